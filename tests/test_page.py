"""The live page in a real headless browser (Debian's Chromium driven by Selenium, its chromedriver from the
system: nothing is downloaded): a real `mt5bridge serve --page` process, a chart over real sockets; the page
shows the floors and headroom `status --json` gives, and follows a new tick. Also: read-only, loopback by
default, and a token for any other address.

MT5BRIDGE_SCREENSHOTS=DIR saves the page as DIR/page.png (the README's picture is made this way)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import without_browser

pytest.importorskip("starlette", reason="the live page needs Starlette and uvicorn: pip install \"mt5bridge[page]\"")
pytest.importorskip("uvicorn", reason="the live page needs Starlette and uvicorn: pip install \"mt5bridge[page]\"")

from test_bridge import (  # noqa: E402
    Chart,
    _bridge_process,
    _process_config,
    bridge_config,
    free_port,
)

from mt5bridge.cli.entry import main  # noqa: E402

T0 = 1_783_400_000_000
CHROMIUM = next((p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
                 if os.path.exists(p)), None)
CHROMEDRIVER = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if os.path.exists("/usr/bin/chromedriver")
                                                else None)


def _browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="the page test drives Chromium with Selenium")
    if CHROMIUM is None or CHROMEDRIVER is None:
        without_browser("no headless browser here: install Debian's chromium and chromium-driver "
                        "(apt-get install chromium chromium-driver)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1500"):
        options.add_argument(arg)
    # The system's chromedriver, named: Selenium Manager then has nothing to look for or download.
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


def _wait_text(driver, css: str, expected: str, timeout: float = 10.0) -> str:
    """Wait until the element shows ``expected`` (read in the page: it is redrawn on every refresh)."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = driver.execute_script("const e = document.querySelector(arguments[0]); return e ? e.textContent : ''",
                                     css)
        if text == expected:
            return text
        time.sleep(0.1)
    raise AssertionError(f"{css}: {text!r}, expected {expected!r}")


def _status_json(config: Path, capsys) -> dict:
    capsys.readouterr()
    assert main(["status", "--config", str(config), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_the_page_shows_the_floors_and_headroom_of_status_and_follows_a_new_tick(tmp_path, capsys):
    driver = _browser()
    config, ea, control = _process_config(tmp_path)
    port = free_port()
    config.write_text(config.read_text() + f"\n[page]\nport = {port}\nrefresh_ms = 300\n", encoding="utf-8")
    try:
        with _bridge_process(config, control, "--page") as proc:
            chart = Chart(ea)
            chart.hello()
            chart.tick(T0, 1.0851)
            time.sleep(0.7)   # the bridge hands the page a new status every 0.5 s
            [info] = _status_json(config, capsys)["accounts"].values()
            a = info["account"]
            driver.get(f"http://127.0.0.1:{port}/")
            _wait_text(driver, ".daily-floor", f"{a['daily_floor']:,.2f}")
            _wait_text(driver, ".overall-floor", f"{a['overall_floor']:,.2f}")
            _wait_text(driver, ".headroom", f"{a['headroom']:,.2f}")
            _wait_text(driver, ".permitted-loss", f"{info['ftmo']['permitted_loss_today']:,.2f}")
            shown = driver.execute_script("return document.body.innerText")
            # Words, not codes: the chart's last decision and today's HOLDs by reason.
            assert "the symbol's features are not warm yet" in shown and "NOT_WARM" not in shown
            assert "reset at Prague midnight in 17 h" in shown
            # A new tick: equity falls by 1,000.00; the page follows without a reload.
            chart.tick(T0 + 60_000, 1.0851, equity=100_345.6)
            time.sleep(0.7)
            [info] = _status_json(config, capsys)["accounts"].values()
            a = info["account"]
            assert a["equity"] == 100_345.6
            _wait_text(driver, ".equity", "100,345.60")
            _wait_text(driver, ".headroom", f"{a['headroom']:,.2f}")
            day_curve = driver.execute_script(
                "return document.querySelector('svg path').getAttribute('d')")
            assert day_curve.count("L") == 1   # two points of the day: the first tick's equity and the new one
            shots = os.environ.get("MT5BRIDGE_SCREENSHOTS")
            if shots:
                driver.save_screenshot(str(Path(shots) / "page.png"))
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(15) == 0
    finally:
        driver.quit()


def test_the_page_is_read_only_and_a_remote_address_needs_a_token(tmp_path):
    from mt5bridge.bridge.server import Bridge, BridgeError

    with pytest.raises(BridgeError, match="page.host 0.0.0.0 is not loopback: give page.token_file"):
        Bridge(bridge_config(tmp_path, page={"enabled": True, "host": "0.0.0.0", "port": 0}))
    short = tmp_path / "short.token"
    short.write_text("abc", encoding="utf-8")
    with pytest.raises(BridgeError, match="the token has 3 characters; at least 16"):
        Bridge(bridge_config(tmp_path, page={"enabled": True, "host": "0.0.0.0", "port": 0,
                                             "token_file": str(short)}))
    token = tmp_path / "page.token"
    token.write_text("a-long-enough-token-1234\n", encoding="utf-8")
    bridge = Bridge(bridge_config(tmp_path, page={"enabled": True, "host": "0.0.0.0", "port": 0,
                                                  "token_file": str(token)}))
    try:
        url = f"http://127.0.0.1:{bridge.page.port}"
        for path in ("/", "/status.json", "/status.json?token=wrong"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(url + path, timeout=5)
            assert refused.value.code == 403
        assert urllib.request.urlopen(url + "/?token=a-long-enough-token-1234", timeout=5).status == 200
        status = json.loads(urllib.request.urlopen(url + "/status.json?token=a-long-enough-token-1234", timeout=5)
                            .read(), parse_constant=lambda name: pytest.fail(f"not strict JSON: {name}"))
        assert status["halt"]["halted"] is False
        with pytest.raises(urllib.error.HTTPError) as refused:   # nothing on the page can change anything
            urllib.request.urlopen(urllib.request.Request(url + "/status.json?token=a-long-enough-token-1234",
                                                          data=b'{"cmd": "halt"}', method="POST"), timeout=5)
        assert refused.value.code == 405
    finally:
        bridge.close()


def test_a_page_port_in_use_stops_the_start_with_its_reason(tmp_path):
    import socket

    from mt5bridge.bridge.server import Bridge, BridgeError

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(BridgeError, match=f"page: cannot listen on 127.0.0.1:{port}: .*set page.port"):
            Bridge(bridge_config(tmp_path, page={"enabled": True, "port": port}))
