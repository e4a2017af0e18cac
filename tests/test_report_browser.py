"""The report in a real browser: Debian's headless Chromium driven by selenium through Debian's chromedriver.

The README's test command installs both packages, so in CI (CI=true) a missing browser is a failure, not a skip.
The screenshot is kept as a test artifact in tests/artifacts/ (its path is printed).
"""
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from reports import ReportOptions, build_report
from reports.inputs import read_inputs

FIXTURE = Path(__file__).parent / "data" / "report" / "sweep"
ARTIFACTS = Path(__file__).parent / "artifacts"


@pytest.fixture(scope="module")
def browser():
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        message = "needs Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message + "; the README's test command installs them")
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1400,1000", "--hide-scrollbars"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    session = webdriver.Chrome(service=Service(driver), options=options)
    yield session
    session.quit()


def test_report_opens_offline_without_errors_and_shows_every_figure(browser, tmp_path):
    index = build_report(read_inputs([FIXTURE]), tmp_path / "report", ReportOptions(command="run_bench.py report"))
    browser.get(index.as_uri())

    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert errors == []
    # Self-contained: the page loaded no resource at all (no CDN, no figure files; everything is inline).
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0

    ARTIFACTS.mkdir(exist_ok=True)
    top = ARTIFACTS / "report_top.png"
    assert browser.save_screenshot(str(top))

    browser.execute_script("document.querySelectorAll('details').forEach(d => d.open = true)")
    figures = browser.find_elements("css selector", "figure.plot svg")
    files = sorted((tmp_path / "report" / "figures").glob("*.svg"))
    # 2 datasets x 4 metric/transform settings, the complexity trade-off and the time view, 1 per-frame figure
    assert len(figures) == len(files) == 11
    for figure in figures:
        assert figure.is_displayed()
        assert figure.size["width"] > 300 and figure.size["height"] > 150, figure.get_attribute("aria-label")
    # The trade-off draws a point for every codec and panel with a value and a BD-rate, measured (filled) and read
    # from the figure (hollow) alike; the time view one per codec run with a time.
    table = pd.read_csv(tmp_path / "report" / "tables" / "complexity.csv")
    placed = table[table["avg BD-rate (%)"].notna()]
    panels = ["temporal buffer (channels)", "model size (M)", "enc kMAC/px", "dec kMAC/px"]
    for kind, suffix in (("measured here", "measured"), ("read from figure", "published")):
        drawn = browser.find_elements("css selector", f"#complexity svg [id^='pt-complexity-'][id$='-{suffix}']")
        assert len(drawn) == int(placed[placed["x values"] == kind][panels].notna().sum().sum()) > 8, kind
        assert all(point.is_displayed() for point in drawn)
    speed = pd.read_csv(tmp_path / "report" / "tables" / "speed.csv")
    drawn = browser.find_elements("css selector", "#complexity svg [id^='pt-speed-']")
    assert len(drawn) == int(speed[["encode (s/frame)", "decode (s/frame)"]].notna().sum().sum()) == 8
    # Every table cell and figure sits inside the page width: nothing spills sideways.
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")

    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1400, min(height + 120, 16000))
    full = ARTIFACTS / "report_full.png"
    assert browser.save_screenshot(str(full))
    print(f"screenshots: {top} {full}")
