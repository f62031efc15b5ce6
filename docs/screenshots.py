"""Make docs/page.png and docs/live-view.png: the demo's bridge and simulated terminal, shot in headless Chromium.

    python docs/screenshots.py [--seconds 25]

Needs mt5bridge[page], selenium, and Debian's chromium and chromium-driver (nothing is downloaded).
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def browser(width: int, height: int):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--window-size={width},{height}"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=25.0, help="how long the demo trades before the shots")
    args = p.parse_args()
    from rich.console import Console

    from mt5bridge.bridge.server import Bridge, control_request
    from mt5bridge.cli.demo import WARMUP_DAYS, _free_port
    from mt5bridge.cli.live_view import render
    from mt5bridge.config import config_from_dict, load_config
    from mt5bridge.simulator import SimulatedTerminal

    folder = Path(tempfile.mkdtemp(prefix="mt5bridge-shots-"))
    data = load_config(None).model_dump(mode="json", by_alias=True)
    ea, control = f"tcp://127.0.0.1:{_free_port()}", f"tcp://127.0.0.1:{_free_port()}"
    data["bridge"].update(endpoint=ea, control_endpoint=control, journal=str(folder / "journal.sqlite"))
    data["page"].update(enabled=True, port=0, refresh_ms=500)
    bridge = Bridge(config_from_dict(data, "the screenshots' configuration"))
    threading.Thread(target=bridge.serve, daemon=True).start()
    terminal = SimulatedTerminal(ea, ["EURUSD", "GBPUSD", "USDJPY", "XAUUSD"], days=3, seed=1,
                                 warmup_days=WARMUP_DAYS, start="2024-01-08T07:00:00Z")
    threading.Thread(target=terminal.run, daemon=True).start()
    time.sleep(args.seconds)
    status = control_request(control, {"cmd": "status"}, timeout_ms=2000, token=bridge.token)
    driver = browser(1400, 1700)
    try:
        driver.get(f"http://127.0.0.1:{bridge.page.port}/")
        time.sleep(2.0)
        driver.save_screenshot(str(HERE / "page.png"))
        console = Console(record=True, width=150, force_terminal=True, color_system="truecolor")
        console.print(render(status))
        html = folder / "live-view.html"
        html.write_text(console.export_html(inline_styles=True), encoding="utf-8")
        driver.set_window_size(1420, 760)
        driver.get(html.as_uri())
        driver.execute_script("document.body.style.background='#0c0c0c';document.body.style.color='#ddd'")
        time.sleep(0.5)
        driver.save_screenshot(str(HERE / "live-view.png"))
    finally:
        driver.quit()
        terminal.stop()
        bridge.request_stop()
        time.sleep(0.3)
        bridge.close()
    print(f"wrote {HERE / 'page.png'} and {HERE / 'live-view.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
