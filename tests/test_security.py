"""Who may do what, tried the way an attacker would: over real sockets, against real `mt5bridge serve` processes.

A local process without the control token, a client with a key of its own making, a key limited to one
account speaking for another, a login the bridge does not serve, and frames built to forge log lines."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest
import zmq
import zmq.auth

from mt5bridge.bridge import protocol as wire
from mt5bridge.cli.entry import main
from mt5bridge.bridge.server import Bridge, BridgeError
from mt5bridge.bridge.server import control_request as ask_bridge
from test_bridge import (SERVER_OFFSET_MS, Chart, Running, _bridge_process, _process_config, _write_config,
                         bridge_config, free_port, running)  # noqa: F401 (running: the fixture)

LOGIN = 1510234567
OTHER_LOGIN = 1510234568
FORGED = "\n2026-12-06 12:00:00 CRITICAL forged"
CLEAR_SCREEN = "\x1b[2J"


def _token(folder: Path) -> str:
    return (folder / "control.token").read_text().strip()


def _stop(proc: subprocess.Popen) -> str:
    """SIGTERM, a clean exit, and everything the process logged."""
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    return err


# ---- the control socket ----------------------------------------------------------------------------------------

def test_a_control_request_without_the_token_or_with_a_wrong_one_is_refused_and_halts_nothing(tmp_path, capsys):
    config, ea, control = _process_config(tmp_path)
    with _bridge_process(config, control) as proc:
        chart = Chart(ea)
        chart.hello()
        before = ask_bridge(control, {"cmd": "status"}, token=_token(tmp_path))["control_refused"]
        attacks = [{"cmd": "halt", "flatten": True, "by": "intruder"},
                   {"cmd": "halt", "flatten": True, "by": "intruder", "token": "x" * 43},
                   {"cmd": "halt", "flatten": True, "by": "intruder", "token": _token(tmp_path)[:-1] + "A"},
                   {"cmd": "halt", "token": 12345},
                   {"cmd": "status"}]
        for attack in attacks:
            answer = ask_bridge(control, attack)
            assert answer["ok"] is False and "token" in answer["error"], answer
            assert "accounts" not in answer                  # nothing about the account leaks either
        assert ask_bridge(control, {})["ok"] is False   # an empty request: no token either
        # The bridge is up, not halted, still trading, and counted every refusal.
        status = ask_bridge(control, {"cmd": "status"}, token=_token(tmp_path))
        assert status["halt"]["halted"] is False and status["control_refused"] == before + len(attacks) + 1
        assert chart.tick(1_783_400_000_000, 1.0851)["type"] == "COMMAND"
        # The operator's commands read the token the bridge made, from the same configuration.
        capsys.readouterr()
        assert main(["status", "--config", str(config), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["source"] == "bridge"
        wrong = tmp_path / "wrong.token"
        wrong.write_text("y" * 43)
        assert main(["halt", "--config", str(config), "--token-file", str(wrong)]) == 1
        assert "wrong control token" in capsys.readouterr().err
        assert main(["halt", "--config", str(config)]) == 0
        assert ask_bridge(control, {"cmd": "status"}, token=_token(tmp_path))["halt"]["halted"]
        log = _stop(proc)
    # Refusals are logged at a bounded rate, not one line each.
    said = [line for line in log.splitlines() if "control: refused" in line]
    assert 1 <= len(said) <= 2, said


def test_the_token_file_is_owner_only_and_a_token_others_can_read_stops_the_bridge(tmp_path):
    old = os.umask(0)   # a trader whose umask lets everyone read new files
    try:
        r = Running(bridge_config(tmp_path))
    finally:
        os.umask(old)
    token_file = tmp_path / "control.token"
    try:
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = r.bridge.token
    finally:
        r.stop()
    r = Running(bridge_config(tmp_path))   # the next start keeps the same token
    r.stop()
    assert r.bridge.token == token
    token_file.chmod(0o644)
    with pytest.raises(BridgeError, match=r"control\.token may be read by other users \(mode 0644\)"):
        Bridge(bridge_config(tmp_path))


@pytest.mark.skipif(os.name == "nt", reason="POSIX file modes")
def test_an_ipc_control_endpoint_is_owner_only(tmp_path):
    # A folder everyone may pass through, as /tmp is: only the socket's own mode keeps others out.
    folder = Path(tempfile.mkdtemp(prefix="mt5b-ipc-"))
    folder.chmod(0o711)
    path = folder / "control.sock"
    cfg = bridge_config(tmp_path, bridge={"control_endpoint": f"ipc://{path}"})
    old = os.umask(0)   # a umask that would leave the socket open to every local user
    try:
        r = Running(cfg)
    finally:
        os.umask(old)
    try:
        mode = path.stat().st_mode
        assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) & 0o077 == 0, oct(mode)
        assert ask_bridge(f"ipc://{path}", {"cmd": "status"}, token=r.bridge.token)["halt"]["halted"] is False
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            # Another local user cannot even connect: the kernel refuses it at the socket file.
            assert _connects_as_nobody(path) == "refused"
    finally:
        r.stop()
        path.unlink(missing_ok=True)
        folder.rmdir()


def _connects_as_nobody(path: Path) -> str:
    """Whether user "nobody" can connect to the Unix socket at ``path``: "connected" or "refused"."""
    import socket

    child = os.fork()
    if child == 0:   # only system calls here, then _exit: nothing of the parent's threads is touched
        code = 2
        try:
            os.setgid(65534)
            os.setuid(65534)
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(str(path))
            code = 0
        except PermissionError:
            code = 1
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)
    return {0: "connected", 1: "refused"}.get(os.waitstatus_to_exitcode(status), "failed")


# ---- CURVE: only the keys of the allow-list ------------------------------------------------------------------

def _keys(tmp_path: Path) -> Path:
    keys = tmp_path / "keys"
    assert main(["keygen", "--out", str(keys)]) == 0
    assert main(["keygen", "--client", "desk", "--out", str(keys)]) == 0
    assert main(["keygen", "--client", "one-account", "--login", str(LOGIN), "--out", str(keys)]) == 0
    return keys


def _curve_chart(endpoint: str, keys: Path, pair: tuple[bytes, bytes] | None, identity: bytes) -> Chart:
    chart = Chart(endpoint, identity=identity)
    chart.sock.close(0)
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.IDENTITY, identity)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, 3000)
    if pair is not None:
        sock.curve_serverkey = zmq.auth.load_certificate(str(keys / "bridge.key"))[0]
        sock.curve_publickey, sock.curve_secretkey = pair
    sock.connect(endpoint)
    chart.sock = sock
    return chart


def _client(keys: Path, name: str) -> tuple[bytes, bytes]:
    return zmq.auth.load_certificate(str(keys / f"{name}.key_secret"))


@pytest.fixture
def curve_bridge(tmp_path):
    """A `mt5bridge serve` process with CURVE on 127.0.0.1 and two allowed client keys, one limited."""
    keys = _keys(tmp_path)
    ea, control = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    config = _write_config(tmp_path, f'[bridge]\nendpoint = "{ea}"\ncontrol_endpoint = "{control}"\n'
                                     'journal = "j.sqlite"\ncurve_secret_key_file = "keys/bridge.key_secret"\n')
    with _bridge_process(config, control) as proc:
        yield proc, ea, control, keys


def test_a_client_with_a_key_of_its_own_making_gets_nothing_and_an_allowed_key_is_welcomed(curve_bridge, tmp_path):
    proc, ea, control, keys = curve_bridge
    # The attacker has the bridge's public key (every EA holds it) and a fresh key pair.
    stranger = _curve_chart(ea, keys, zmq.curve_keypair(), b"stranger-EURUSD-1")
    stranger.sock.setsockopt(zmq.RCVTIMEO, 800)
    stranger.send(dict(wire.Hello.example, seq=1))
    with pytest.raises(zmq.Again):
        stranger.sock.recv()
    plain = _curve_chart(ea, keys, None, b"plain-EURUSD-1")   # and no CURVE at all, on loopback
    plain.sock.setsockopt(zmq.RCVTIMEO, 800)
    plain.send(dict(wire.Hello.example, seq=1))
    with pytest.raises(zmq.Again):
        plain.sock.recv()
    desk = _curve_chart(ea, keys, _client(keys, "desk"), b"1510234567-EURUSD-1")
    assert desk.hello(login=LOGIN)["type"] == "WELCOME"
    assert desk.tick(1_783_400_000_000, 1.0851)["type"] == "COMMAND"
    status = ask_bridge(control, {"cmd": "status"}, token=_token(tmp_path))
    assert list(status["accounts"]) == [str(LOGIN)] and status["clients_refused"] >= 1
    log = _stop(proc)
    assert "whose client key is not in" in log


def test_a_key_limited_to_one_login_cannot_speak_for_another(curve_bridge, tmp_path):
    proc, ea, control, keys = curve_bridge
    limited = _curve_chart(ea, keys, _client(keys, "one-account"), b"1510234568-EURUSD-1")
    refused = limited.hello(login=OTHER_LOGIN)
    assert (refused["type"], refused["code"], refused["reply_to"]) == ("ERROR", "FORBIDDEN", 1)
    assert str(OTHER_LOGIN) in refused["message"] and str(LOGIN) not in refused["message"]
    assert limited.tick(1_783_400_000_000, 1.0851)["code"] == "NOT_INTRODUCED"   # nothing was made for it
    # The same key speaks for its own account.
    own = _curve_chart(ea, keys, _client(keys, "one-account"), b"1510234567-GBPUSD-1")
    assert own.hello(login=LOGIN, symbol="GBPUSD")["type"] == "WELCOME"
    # A key for any login introduces a chart of the other account; the limited key then claims that chart's
    # identity (zmq hands it over) and sends TICKs for it without a HELLO: refused, and the chart stays its owner's.
    victim = _curve_chart(ea, keys, _client(keys, "desk"), b"1510234568-EURUSD-7")
    assert victim.hello(login=OTHER_LOGIN)["type"] == "WELCOME"
    victim.close()
    thief = _curve_chart(ea, keys, _client(keys, "one-account"), b"1510234568-EURUSD-7")
    thief.seq = 5
    stolen = thief.tick(1_783_400_000_000, 1.0851)
    assert (stolen["type"], stolen["code"]) == ("ERROR", "FORBIDDEN") and str(OTHER_LOGIN) not in stolen["message"]
    again = _curve_chart(ea, keys, _client(keys, "desk"), b"1510234568-EURUSD-7")
    again.seq = 9
    assert again.tick(1_783_400_001_000, 1.0851)["type"] == "COMMAND"
    status = ask_bridge(control, {"cmd": "status"}, token=_token(tmp_path))
    assert sorted(status["accounts"]) == sorted([str(LOGIN), str(OTHER_LOGIN)])
    assert status["errors"]["FORBIDDEN"] == 2


def test_a_client_key_folder_that_is_missing_or_holds_a_secret_stops_the_bridge(tmp_path):
    keys = tmp_path / "keys"
    assert main(["keygen", "--out", str(keys)]) == 0
    cfg = bridge_config(tmp_path, bridge={"curve_secret_key_file": str(keys / "bridge.key_secret")})
    with pytest.raises(BridgeError, match="client-keys folder .* does not exist: make a client key"):
        Bridge(cfg)
    (keys / "clients").mkdir()
    (keys / "clients" / "oops.key").write_text((keys / "bridge.key_secret").read_text())
    with pytest.raises(BridgeError, match="oops.key holds a secret key"):
        Bridge(cfg)


# ---- bridge.accounts --------------------------------------------------------------------------------------------

def test_a_hello_for_a_login_the_bridge_does_not_serve_is_forbidden_by_name(running, tmp_path):
    r = running(bridge_config(tmp_path, bridge={"accounts": [LOGIN]}))
    other = Chart(r.cfg.bridge.endpoint, identity=b"1510234568-EURUSD-1")
    refused = other.hello(login=OTHER_LOGIN)
    assert (refused["type"], refused["code"], refused["reply_to"]) == ("ERROR", "FORBIDDEN", 1)
    assert str(OTHER_LOGIN) in refused["message"] and str(LOGIN) not in refused["message"]
    assert other.tick(1_783_400_000_000, 1.0851)["code"] == "NOT_INTRODUCED"
    served = Chart(r.cfg.bridge.endpoint)
    assert served.hello(login=LOGIN)["type"] == "WELCOME"
    assert served.tick(1_783_400_000_000, 1.0851)["type"] == "COMMAND"
    status = ask_bridge(r.cfg.bridge.control_endpoint, {"cmd": "status"}, token=r.bridge.token)
    assert list(status["accounts"]) == [str(LOGIN)]   # the refused login left nothing behind


# ---- log hygiene -------------------------------------------------------------------------------------------------

def test_frames_built_to_forge_log_lines_or_send_escape_codes_leave_one_line_each(tmp_path):
    config, ea, control = _process_config(tmp_path)
    with _bridge_process(config, control) as proc:
        chart = Chart(ea, identity=(f"id{FORGED}{CLEAR_SCREEN}").encode())
        welcome = chart.hello(symbol=f"EURUSD{FORGED}{CLEAR_SCREEN}", server=f"srv{FORGED}\u2028\x85\r")
        assert welcome["type"] == "WELCOME"
        chart.send({"type": "FAILSAFE", "seq": chart.next_seq(), "kind": "EQUITY_GUARD",
                    "time_msc": 1_783_400_000_000 + SERVER_OFFSET_MS, "detail": f"detail{FORGED}{CLEAR_SCREEN}"})
        chart.send({"type": "BYE", "seq": chart.next_seq(), "reason": f"bye{FORGED}{CLEAR_SCREEN}"})
        answer = ask_bridge(control, {"cmd": "halt", "by": f"op{FORGED}{CLEAR_SCREEN}"}, token=_token(tmp_path))
        assert answer["ok"]
        status = ask_bridge(control, {"cmd": "status"}, token=_token(tmp_path))
        assert "\n" not in status["halt"]["by"] and "\x1b" not in status["halt"]["by"]
        log = _stop(proc)
    assert "\x1b" not in log and "\u2028" not in log and "\x85" not in log and "\r" not in log
    assert not [line for line in log.splitlines() if line.startswith(FORGED.strip())]
    # Each string did reach the log, escaped, on the line of the event it belongs to.
    for said in ("chart id\\n2026-12-06 12:00:00 CRITICAL forged\\x1b[2J", "EURUSD\\n2026-12-06",
                 "srv\\n2026-12-06 12:00:00 CRITICAL forged\\u2028\\x85\\r", "detail\\n2026-12-06",
                 "bye\\n2026-12-06", "halt by op\\n2026-12-06"):
        assert said in log, said


def test_a_traceback_keeps_its_lines_but_an_exception_message_cannot_start_one():
    from mt5bridge.bridge.logsafe import SafeFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(SafeFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("mt5bridge.test_logsafe")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise ValueError(f"bad symbol{FORGED}{CLEAR_SCREEN}")
        except ValueError:
            logger.error("failed on %s", f"EURUSD{FORGED}", exc_info=True)
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert "\x1b" not in stream.getvalue()
    assert lines[0].endswith("failed on EURUSD\\n2026-12-06 12:00:00 CRITICAL forged")
    assert len(lines) > 3 and all(line.startswith("  ") for line in lines[1:])   # the traceback, indented
    assert any("File " in line for line in lines[1:])
