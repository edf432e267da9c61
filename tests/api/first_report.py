"""Seconds from `dermq up` (an installed checkout, an empty data directory) to a report rendered in a
headless Chromium: the viewer's first-report time, one run.

    .venv/bin/python -m tests.api.first_report      # from the repository root; needs chromium + chromedriver
"""
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

from dermq.embedded import free_port


def main() -> None:
    repo = Path(__file__).resolve().parents[2]
    data, port = Path(tempfile.mkdtemp(prefix="dermq-first-report-")), free_port()
    t0 = time.perf_counter()
    up = subprocess.Popen([str(repo / ".venv/bin/dermq"), "up", "--port", str(port), "--data-dir", str(data)],
                          stdout=subprocess.PIPE, text=True, cwd=repo)
    for line in up.stdout:
        if "Press Ctrl-C" in line:
            break
    ready = time.perf_counter() - t0
    creds = json.loads((data / "dev-credentials.json").read_text())
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(arg)
    d = webdriver.Chrome(service=Service(executable_path=shutil.which("chromedriver")), options=options)
    try:
        w = WebDriverWait(d, 90, poll_frequency=0.1)
        d.get(f"http://127.0.0.1:{port}/ui")
        w.until(lambda d: d.find_element("css selector", "#username").is_displayed())
        d.find_element("css selector", "#username").clear()
        d.find_element("css selector", "#username").send_keys(creds["username"])
        d.find_element("css selector", "#password").send_keys(creds["password"])
        d.find_element("css selector", "#login-form button[type=submit]").click()
        w.until(lambda d: d.find_element("css selector", "#view-diagnosis").is_displayed())
        image = repo / "tests" / "fixtures" / "isic2017-sample" / "images" / "ISIC_0001769.jpg"
        d.find_element("css selector", "#diagnosis-files").send_keys(str(image))
        d.find_element("css selector", "#diagnosis-submit").click()
        shown = lambda d: (e := d.find_elements("css selector", "[data-testid=top-condition]")) and e[0].is_displayed()  # noqa: E731
        w.until(shown)
        top = d.find_element("css selector", "[data-testid=top-condition]")
        done = time.perf_counter() - t0
        print(f"service ready after {ready:.1f} s; report rendered ({top.text}) after {done:.1f} s from `dermq up`")
    finally:
        d.quit()
        up.send_signal(2)
        up.wait(60)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
