"""Sweeps that make every run count once and run anywhere: a real SQLite result store that an interrupted sweep
resumes from, the same ranking from local processes and from a Dask cluster, a killed worker's run done again,
constraints that disqualify, an Optuna search the seed makes repeatable."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import threading
import time

import pytest

from conftest import package_process
from desk import config_for_signals
from mt5bridge.cli.entry import main
from mt5bridge.workbench.replay import synthetic_markets
from mt5bridge.workbench.store import ResultStore
from mt5bridge.workbench.sweep import SweepError, plan_from_dict, run_sweep

distributed = pytest.importorskip("distributed", reason="the cluster executor needs mt5bridge[cluster]")

# Five days of synthetic EURUSD, one of them warm-up: a replay takes a fraction of a second.
ARGS = {"warmup_days": 1.0}
GRID = {"entry.min_score": [0, 50, 100], "exits.sl_atr": [1.0, 2.0], "scale_in.min_score": [100]}


def _base():
    return config_for_signals()


@pytest.fixture(scope="module")
def markets():
    return synthetic_markets(["EURUSD"], days=5, seed=8)


@pytest.fixture(scope="module")
def in_one_process(markets):
    """The reference: every run replayed in this process, no store."""
    plan = plan_from_dict({"parameters": GRID}, _base())
    return run_sweep(plan, _base(), markets, workers=1, replay_args=ARGS)


def _config_file(tmp_path) -> str:
    from mt5bridge.config import effective_toml

    path = tmp_path / "config.toml"
    path.write_text(effective_toml(_base()), encoding="utf-8")
    return str(path)


def _stored(path) -> dict[str, int]:
    with ResultStore(path) as store:
        return store.times_stored()


def test_a_run_with_no_trades_ranks_last_with_a_note_and_is_never_best(in_one_process):
    rows = in_one_process
    idle = [r for r in rows if r["trades"] == 0]
    assert len(idle) == 2 and rows[-2:] == idle, "min_score 100 trades nothing; those two come last"
    assert all("no trades" in r["note"] for r in idle)
    assert all(r["trades"] > 0 for r in rows[:4])
    profits = [r["net_profit"] for r in rows[:4]]
    assert profits == sorted(profits, reverse=True)


def test_an_interrupted_sweep_resumes_and_no_run_is_done_twice(tmp_path):
    sweep = tmp_path / "sweep.toml"
    sweep.write_text("[parameters]\n\"exits.sl_atr\" = [1.0, 1.25, 1.5, 1.75, 2.0, 2.25, 2.5, 2.75]\n")
    store = tmp_path / "results.sqlite"
    args = ["sweep", "--sweep", str(sweep), "--synthetic", "EURUSD", "--days", "5", "--warmup-days", "1",
            "--workers", "1", "--config", _config_file(tmp_path), "--store", str(store), "--out",
            str(tmp_path / "out.csv"), "--best",
            str(tmp_path / "best.toml")]
    cmd, env, cwd = package_process(args, tmp_path)
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            if store.exists():
                try:
                    with sqlite3.connect(store) as db:
                        if db.execute("SELECT COUNT(*) FROM results").fetchone()[0] >= 2:
                            break
                except sqlite3.OperationalError:
                    pass   # the table is not made yet
            time.sleep(0.05)
        assert proc.poll() is None, "the sweep ended before it could be interrupted: " + proc.stderr.read().decode()
        os.killpg(proc.pid, signal.SIGKILL)   # as a power cut or a closed terminal does: no clean-up runs
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.stderr.close()
    before = _stored(store)
    assert 2 <= len(before) < 8
    assert main(args) == 0
    after = _stored(store)
    assert len(after) == 8 and set(before) <= set(after)
    assert set(after.values()) == {1}, "a run finished before the interruption was replayed again"
    assert main(args + ["--quiet"]) == 0
    assert set(_stored(store).values()) == {1}


def test_sweeps_share_the_runs_they_have_in_common_and_nothing_else(tmp_path, capsys):
    def sweep(values: str, *extra: str) -> str:
        path = tmp_path / "sweep.toml"
        path.write_text(f"[parameters]\n\"exits.sl_atr\" = {values}\n")
        code = main(["sweep", "--sweep", str(path), "--synthetic", "EURUSD", "--days", "5", "--warmup-days", "1",
                     "--workers", "1", "--config", _config_file(tmp_path), "--store", str(tmp_path / "s.sqlite"),
                     "--out", str(tmp_path / "o.csv"),
                     "--best", str(tmp_path / "b.toml"), *extra])
        assert code == 0
        return capsys.readouterr().err

    assert "2 runs: 2 new, 0 stored" in sweep("[1.0, 2.0]")
    assert "2 runs: 1 new, 1 stored" in sweep("[2.0, 3.0]")
    # Other data or another replay setting is another run, whatever the settings.
    assert "2 runs: 2 new, 0 stored" in sweep("[2.0, 3.0]", "--seed", "9")
    assert "2 runs: 2 new, 0 stored" in sweep("[2.0, 3.0]", "--slippage-points", "5")
    assert set(_stored(tmp_path / "s.sqlite").values()) == {1}


def test_local_processes_and_a_two_worker_local_cluster_give_the_same_ranking(markets, in_one_process, tmp_path):
    plan = plan_from_dict({"parameters": GRID}, _base())
    two = run_sweep(plan, _base(), markets, workers=2, replay_args=ARGS)
    cluster = run_sweep(plan, _base(), markets, cluster="local:2", replay_args=ARGS,
                        store=ResultStore(tmp_path / "c.sqlite"))
    assert two == in_one_process
    assert cluster == in_one_process
    assert len({r["net_profit"] for r in cluster}) >= 4   # the settings mattered


def test_walk_forward_gives_the_same_tables_on_processes_and_on_a_cluster_with_each_windows_dates(tmp_path):
    markets = synthetic_markets(["EURUSD"], days=8, seed=3)
    spec = {"sweep": {"walk_forward": True, "top": 2, "train_fraction": 0.6},
            "parameters": {"exits.sl_atr": [1.0, 2.0], "entry.min_score": [0, 50]}}
    plan = plan_from_dict(spec, _base())
    local = run_sweep(plan, _base(), markets, workers=2, replay_args=ARGS)
    cluster = run_sweep(plan, _base(), markets, cluster="local:2", replay_args=ARGS)
    assert local == cluster
    train = [r for r in local if r["period"] == "train"]
    test = [r for r in local if r["period"] == "test"]
    assert len(train) == 4 and len(test) == 2
    assert train[0]["from"] == "2024-01-02 00:00"    # one day of warm-up after the first tick
    assert train[0]["to"] < test[0]["from"] and test[0]["to"].startswith("2024-01-08")


def test_a_killed_workers_runs_are_done_again_elsewhere(markets, in_one_process, tmp_path):
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                       silence_logs=50)
    watch = distributed.Client(cluster)
    store = tmp_path / "k.sqlite"
    plan = plan_from_dict({"parameters": GRID}, _base())
    out: dict = {}

    def sweep() -> None:
        try:
            out["rows"] = run_sweep(plan, _base(), markets, cluster=cluster.scheduler_address, replay_args=ARGS,
                                    store=ResultStore(store))
        except BaseException as exc:   # handed to the test's thread
            out["error"] = exc

    try:
        pids = watch.run(os.getpid)
        thread = threading.Thread(target=sweep)
        thread.start()
        victim, lost = None, []
        deadline = time.monotonic() + 60
        while victim is None and time.monotonic() < deadline:
            for address, keys in watch.processing().items():
                replays = [k for k in keys if str(k).startswith("replay-")]
                if replays:
                    victim, lost = address, replays
                    break
            time.sleep(0.01)
        assert victim is not None, "no replay was ever seen running"
        os.kill(pids[victim], signal.SIGKILL)
        thread.join(timeout=120)
        assert not thread.is_alive()
    finally:
        watch.close()
        cluster.close()
    assert "error" not in out, out.get("error")
    assert out["rows"] == in_one_process
    runs_lost = {int(str(k).split("-")[2]) for k in lost}
    assert runs_lost and len(_stored(store)) == 6 and set(_stored(store).values()) == {1}


def test_constraints_disqualify_with_the_reason_and_are_read_from_stored_runs(markets, in_one_process, tmp_path):
    store = ResultStore(tmp_path / "s.sqlite")
    run_sweep(plan_from_dict({"parameters": GRID}, _base()), _base(), markets, workers=1, replay_args=ARGS,
              store=store)
    trades = sorted(r["trades"] for r in in_one_process if r["trades"])
    cap = sorted(r["max_drawdown_pct"] for r in in_one_process if r["trades"])
    spec = {"parameters": GRID, "constraints": {"min_trades": trades[1], "max_drawdown_pct": cap[-1] - 1e-6}}
    seen: list = []
    rows = run_sweep(plan_from_dict(spec, _base()), _base(), markets, workers=1, replay_args=ARGS, store=store,
                     progress=seen.append)
    assert seen[0].stored == 6 and seen[-1].measured == 0, "the constrained sweep replayed instead of reading"
    few = [r for r in rows if 0 < r["trades"] < trades[1]]
    deep = [r for r in rows if r["trades"] and r["max_drawdown_pct"] == cap[-1]]
    assert few and all(r["disqualified"] and f"trades {r['trades']}, needs >= {trades[1]}" in r["note"] for r in few)
    assert deep and all(r["disqualified"] and "max_drawdown_pct" in r["note"] for r in deep)
    kept = [r for r in rows if not r["disqualified"] and r["trades"]]
    assert kept and rows[: len(kept)] == kept


def test_the_odds_of_passing_are_stored_ranked_by_and_bound(markets, tmp_path):
    store = ResultStore(tmp_path / "o.sqlite")
    rows = run_sweep(plan_from_dict({"parameters": GRID, "sweep": {"objective": "p_pass"}}, _base()), _base(),
                     markets, workers=1, replay_args=ARGS, store=store)
    odds = [r["p_pass"] for r in rows if r["trades"]]
    assert odds and all(0.0 <= p <= 1.0 for p in odds)
    assert odds == sorted(odds, reverse=True), "ranked by the odds of passing, best first"
    best = max(odds)
    spec = {"parameters": GRID, "sweep": {"objective": "p_pass"}, "constraints": {"min_p_pass": best + 0.001}}
    rows = run_sweep(plan_from_dict(spec, _base()), _base(), markets, workers=1, replay_args=ARGS, store=store)
    assert all(r["disqualified"] for r in rows if r["trades"])
    assert any(f"needs >= {best + 0.001:g}" in r["note"] and "p_pass" in r["note"] for r in rows)


@pytest.mark.parametrize("constraints, message", [
    ({"min_trade": 3}, "no such figure 'trade' (did you mean 'trades'?)"),
    ({"min_p_pas": 0.5}, "no such figure 'p_pas' (did you mean 'p_pass'?)"),
    ({"ftmo_breach": False}, "always disqualified"),
    ({"trades": 3}, "a constraint is min_FIGURE or max_FIGURE"),
    ({"max_daily_loss_pct": "4%"}, "must be a number"),
])
def test_a_bad_constraint_is_refused_before_anything_runs(constraints, message):
    with pytest.raises(SweepError) as err:
        plan_from_dict({"parameters": {"exits.sl_atr": [1.0]}, "constraints": constraints}, _base())
    assert message in str(err.value)


def test_the_command_refuses_an_unknown_figure_and_a_bad_cluster_before_running(tmp_path, capsys):
    sweep = tmp_path / "sweep.toml"
    sweep.write_text("[parameters]\n\"exits.sl_atr\" = [1.0]\n")
    common = ["sweep", "--sweep", str(sweep), "--synthetic", "EURUSD", "--days", "5", "--store",
              str(tmp_path / "s.sqlite")]
    assert main(common + ["--objective", "p_passing"]) == 2
    assert "p_pass" in capsys.readouterr().err   # named as the nearest figure
    assert main(common + ["--cluster", "local:two"]) == 2
    assert "local:N needs a number of workers" in capsys.readouterr().err
    assert not (tmp_path / "s.sqlite").exists()


def test_an_optuna_search_is_the_same_for_the_same_seed_and_reads_the_store(markets, tmp_path):
    pytest.importorskip("optuna", reason="the Optuna search needs mt5bridge[optuna]")
    spec = {"sweep": {"method": "optuna", "trials": 6, "batch": 3, "seed": 11},
            "parameters": {"exits.sl_atr": {"min": 1.0, "max": 3.0}, "entry.min_score": {"min": 0, "max": 60},
                           "exits.tp_atr": {"min": 1.5, "max": 4.0, "step": 0.5}},
            "constraints": {"min_trades": 1}}
    store = ResultStore(tmp_path / "o.sqlite")
    first = run_sweep(plan_from_dict(spec, _base()), _base(), markets, workers=2, replay_args=ARGS, store=store)
    seen: list = []
    again = run_sweep(plan_from_dict(spec, _base()), _base(), markets, workers=1, replay_args=ARGS, store=store,
                      progress=seen.append)
    assert again == first and len(first) == 6
    assert all(p.measured == 0 for p in seen), "the same search replayed runs it had stored"
    assert len({tuple(r["params"].items()) for r in first}) == 6
    assert all(r["params"]["exits.tp_atr"] in (1.5, 2.0, 2.5, 3.0, 3.5, 4.0) for r in first)
    other = run_sweep(plan_from_dict(spec, _base(), seed=12), _base(), markets, workers=1, replay_args=ARGS,
                      store=store)
    assert [r["params"] for r in other] != [r["params"] for r in first]
    assert set(store.times_stored().values()) == {1}


def test_the_store_is_in_the_users_cache_folder_unless_told(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr("sys.platform", "linux")
    sweep = tmp_path / "sweep.toml"
    sweep.write_text("[parameters]\n\"exits.sl_atr\" = [1.0]\n")
    args = ["sweep", "--sweep", str(sweep), "--synthetic", "EURUSD", "--days", "3", "--warmup-days", "1",
            "--workers", "1", "--config", _config_file(tmp_path), "--out", str(tmp_path / "o.csv"), "--best",
            str(tmp_path / "b.toml"), "--quiet"]
    assert main(args) == 0
    assert len(_stored(tmp_path / "cache" / "mt5bridge" / "sweep-results.sqlite")) == 1
    assert main(args + ["--no-store"]) == 0 and main(args + ["--store", str(tmp_path / "mine.sqlite")]) == 0
    assert len(_stored(tmp_path / "cache" / "mt5bridge" / "sweep-results.sqlite")) == 1
    assert len(_stored(tmp_path / "mine.sqlite")) == 1


def test_ctrl_c_stops_the_sweep_and_says_how_to_resume(tmp_path):
    sweep = tmp_path / "sweep.toml"
    sweep.write_text("[parameters]\n\"exits.sl_atr\" = [1.0, 1.25, 1.5, 1.75, 2.0, 2.25, 2.5, 2.75]\n")
    store = tmp_path / "results.sqlite"
    cmd, env, cwd = package_process(["sweep", "--sweep", str(sweep), "--synthetic", "EURUSD", "--days", "5",
                                     "--warmup-days", "1", "--workers", "2", "--config", _config_file(tmp_path),
                                     "--store", str(store)], tmp_path)
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            if store.exists() and len(_stored(store)) >= 1:
                break
            time.sleep(0.05)
        assert proc.poll() is None
        os.killpg(proc.pid, signal.SIGINT)   # Ctrl-C reaches the command and its processes, as on a terminal
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    err = err.decode()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "run the same command again to resume" in err and "Traceback" not in err
    assert 1 <= len(_stored(store)) < 8


def test_an_unreachable_scheduler_is_named(tmp_path):
    from mt5bridge.workbench.executors import DaskCluster, ExecutorError

    with socket_closed() as port:
        with pytest.raises(ExecutorError) as err:
            DaskCluster(f"127.0.0.1:{port}", connect_timeout_s=2).client()
    assert f"127.0.0.1:{port}" in str(err.value) and "dask scheduler" in str(err.value)


def socket_closed():
    """A port on 127.0.0.1 nothing listens on (bound, then released)."""
    import contextlib
    import socket

    @contextlib.contextmanager
    def port():
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            number = s.getsockname()[1]
        yield number

    return port()


def test_a_worker_with_another_engine_build_is_refused(markets, monkeypatch, tmp_path):
    # The command's machine believes it runs another build than the process that replays: as when a cluster
    # worker has an older mt5bridge installed. Its results must not be stored under this engine's keys.
    monkeypatch.setattr("mt5bridge.workbench.sweep.engine_version", lambda: "0.0.1+another-build")
    store = ResultStore(tmp_path / "s.sqlite")
    plan = plan_from_dict({"parameters": {"exits.sl_atr": [1.0]}}, _base())
    with pytest.raises(SweepError) as err:
        run_sweep(plan, _base(), markets, workers=1, replay_args=ARGS, store=store)
    assert "runs engine" in str(err.value) and "0.0.1+another-build" in str(err.value)
    assert len(store) == 0


def test_a_file_that_is_not_a_store_is_refused_with_its_path(tmp_path, capsys):
    bad = tmp_path / "notes.sqlite"
    bad.write_text("my trading notes, not a database\n" * 50)
    sweep = tmp_path / "sweep.toml"
    sweep.write_text("[parameters]\n\"exits.sl_atr\" = [1.0]\n")
    assert main(["sweep", "--sweep", str(sweep), "--synthetic", "EURUSD", "--days", "3", "--store", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "result store" in err and "Traceback" not in err
    assert bad.read_text().startswith("my trading notes")


def test_nothing_stored_by_another_engine_build_is_reused(markets, monkeypatch, tmp_path):
    plan = plan_from_dict({"parameters": {"exits.sl_atr": [1.0]}}, _base())
    store = ResultStore(tmp_path / "s.sqlite")
    with monkeypatch.context() as m:   # an older build of the engine, everywhere
        m.setattr("mt5bridge.workbench.sweep.engine_version", lambda: "0.0.1+older-build")
        m.setattr("mt5bridge.workbench.store.engine_version", lambda: "0.0.1+older-build")
        run_sweep(plan, _base(), markets, workers=1, replay_args=ARGS, store=store)
    seen: list = []
    run_sweep(plan, _base(), markets, workers=1, replay_args=ARGS, store=store, progress=seen.append)
    assert seen[0].stored == 0 and seen[-1].measured == 1 and len(store) == 2
