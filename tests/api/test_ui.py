"""The viewer at /ui, driven in headless Chromium against the real stack (API, Redis, Celery worker).

The browser is Debian's `chromium` with its `chromium-driver`; nothing is downloaded. Without them
these tests skip, unless DERMQ_REQUIRE_BROWSER=1 (CI), where a missing browser is a failure.
The screenshots the tests take are the ones in docs/images/ and the README.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx
import pytest
from support import SAMPLE_IMAGES, Service, attachment

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

pytestmark = pytest.mark.slow

DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
DESKTOP = (1280, 900)
PHONE = (390, 844)
WAIT_S = 90
IMAGE = SAMPLE_IMAGES[0]


def _browser_paths() -> tuple[str, str] | str:
    """(chromium, chromedriver), or why they cannot be used."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None)
    if not chromium or not driver:
        return "chromium and chromedriver are not installed (apt-get install chromium chromium-driver)"
    return chromium, driver


BROWSER = _browser_paths()
# Decided before any fixture runs, so a machine without a browser does not start the stack for nothing.
needs_browser = pytest.mark.skipif(isinstance(BROWSER, str) and os.environ.get("DERMQ_REQUIRE_BROWSER") != "1",
                                   reason=str(BROWSER))


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    if isinstance(BROWSER, str):
        pytest.fail(f"DERMQ_REQUIRE_BROWSER=1 but {BROWSER}")
    chromium, driver_path = BROWSER
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--disable-extensions", "--no-first-run", f"--window-size={DESKTOP[0]},{DESKTOP[1]}"):
        options.add_argument(arg)
    # The network log lets the tests see every request the page makes.
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=DriverService(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def viewport(driver, width: int, height: int, mobile: bool = False) -> None:
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})


def wait(driver, condition, timeout: float = WAIT_S):
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    # Live pages re-render (progress every second): an element found a moment ago may be replaced; ask again.
    return WebDriverWait(driver, timeout, poll_frequency=0.2,
                         ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)).until(condition)


def visible(driver, css: str, timeout: float = WAIT_S):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    return wait(driver, ec.visibility_of_element_located((By.CSS_SELECTOR, css)), timeout)


def find(driver, css: str):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, css)


def screenshot(driver, name: str, *, width: int, height: int | None = None, mobile: bool = False,
               scroll_to: str | None = None) -> Path:
    """A PNG in docs/images: the viewport at width x height, or the whole page when height is None."""
    from PIL import Image

    if height is None:
        viewport(driver, width, DESKTOP[1])
        height = min(int(driver.execute_script("return document.documentElement.scrollHeight")), 2400)
    viewport(driver, width, height, mobile)
    driver.execute_script("document.activeElement && document.activeElement.blur()")  # no focus ring in the docs
    if scroll_to:
        driver.execute_script("document.querySelector(arguments[0]).scrollIntoView({block: 'start'})", scroll_to)
    else:
        driver.execute_script("window.scrollTo(0, 0)")
    wait(driver, lambda d: d.execute_script(
        "return [...document.images].every(i => !i.offsetParent || (i.complete && i.naturalWidth > 0))"), 20)
    png = driver.get_screenshot_as_png()
    # A 256-colour palette keeps the committed PNGs small while photographs stay legible.
    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
    path = DOCS_IMAGES / name
    image.save(path, optimize=True)
    assert Image.open(path).size == (width, height)
    return path


def sign_in(driver, service: Service) -> None:
    driver.get(f"{service.url}/ui")
    assert urlsplit(driver.current_url).path == "/ui/"
    if find(driver, "#view-login").is_displayed() is False:
        return
    find(driver, "#username").clear()
    find(driver, "#username").send_keys(service.username)
    find(driver, "#password").send_keys(service.password)
    find(driver, "#login-form button[type=submit]").click()
    visible(driver, "#view-diagnosis", 20)


def api_requests(driver) -> list[dict]:
    """The HTTP requests the page sent since the last call: url, method, headers."""
    sent = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            request = message["params"]["request"]
            if request["url"].startswith(("http:", "https:")):
                sent.append(request)
    return sent


@pytest.fixture(scope="module")
def signed_in(browser, service: Service):
    viewport(browser, *DESKTOP)
    sign_in(browser, service)
    return browser


def test_viewer_is_served_without_a_token(service: Service) -> None:
    with httpx.Client(base_url=service.url, timeout=10) as plain:
        redirect = plain.get("/ui")
        assert redirect.status_code == 308 and redirect.headers["location"] == "/ui/"
        page = plain.get("/ui/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert 'src="app.js"' in page.text and 'href="style.css"' in page.text
        script = plain.get("/ui/app.js")
        assert script.status_code == 200 and "javascript" in script.headers["content-type"]
        assert plain.get("/ui/style.css").headers["content-type"].startswith("text/css")
        assert plain.get("/ui/missing.js").status_code == 404
        # The static files need no token; the API behind them still does.
        assert plain.get("/jobs").status_code == 401


@needs_browser
def test_login_keeps_the_token_in_session_storage(signed_in, service: Service) -> None:
    token = signed_in.execute_script("return sessionStorage.getItem('dermq.token')")
    assert token and httpx.get(f"{service.url}/jobs", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert not find(signed_in, "#view-login").is_displayed()
    assert find(signed_in, "#who").text == f"({service.username})"


@needs_browser
def test_diagnosis_report_in_the_browser(signed_in, service: Service, api: httpx.Client) -> None:
    driver = signed_in
    expected = api.post("/diagnosis-support", json={"payload": [attachment(IMAGE)]}).json()
    api_requests(driver)  # forget what came before

    find(driver, "#diagnosis-files").send_keys(str(IMAGE))
    wait(driver, lambda d: find(d, "#diagnosis-submit").is_enabled(), 20)
    assert find(driver, "#diagnosis-thumbs img").get_attribute("alt") == IMAGE.name
    find(driver, "#diagnosis-submit").click()

    top = visible(driver, "[data-testid=top-condition]")
    assert top.text == expected["conclusion"][0]["code"]["text"]
    names = [e.text for e in driver.find_elements("css selector", ".summary .conditions .condition-name")]
    assert names == [c["code"]["text"] for c in expected["conclusion"][:5]]

    # The top condition's heat map, loaded and laid over the person's own image.
    overlay = visible(driver, ".heatmap-overlay")
    heat = expected["imagingAnalysis"][0]["conclusion"][0]["explainability"]["heatMap"]
    wait(driver, lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", overlay), 20)
    assert driver.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight]", overlay) == [
        heat["width"], heat["height"]]
    assert overlay.get_attribute("src").startswith("data:image/jpeg;base64,")
    base = find(driver, ".heatmap-figure img.base")
    assert base.get_attribute("src").startswith("blob:")
    assert overlay.size == base.size  # drawn over the whole image

    # Opacity and the toggle act on the overlay.
    from selenium.webdriver.support.ui import Select

    slider = find(driver, ".heatmap-figure input[type=range]")
    driver.execute_script("arguments[0].value = 25; arguments[0].dispatchEvent(new Event('input'))", slider)
    assert overlay.value_of_css_property("opacity") == "0.25"
    choice = Select(find(driver, ".heatmap-figure select"))
    second = expected["imagingAnalysis"][0]["conclusion"][1]
    choice.select_by_value(second["code"]["coding"][0]["code"])
    assert overlay.get_attribute("src") == "data:image/jpeg;base64," + second["explainability"]["heatMap"]["data"]
    toggle = find(driver, ".heatmap-figure input[type=checkbox]")
    toggle.click()
    assert not overlay.is_displayed()
    toggle.click()
    choice.select_by_index(0)
    driver.execute_script("arguments[0].value = 60; arguments[0].dispatchEvent(new Event('input'))", slider)

    # Quality verdict, indicators, the model and its measured operating point.
    validity = expected["imagingAnalysis"][0]["mediaValidity"]
    assert find(driver, "[data-testid=quality-verdict]").text == ("usable" if validity["isValid"] else "not usable")
    assert validity["quality"]["interpretation"] in find(driver, ".quality").text
    indicators = find(driver, ".summary .indicators").text
    assert f"Malignancy {expected['clinicalIndicator']['malignancy']:.1f} %" in indicators
    model = next(m for m in expected["device"]["models"] if m["task"] == "classification")
    model_text = find(driver, ".summary .model").text
    assert f"{model['name']} {model['version']}" in model_text and ("trained" if model["trained"] else "untrained") in model_text
    perf = expected["performanceIndicator"]
    assert f"sensitivity {perf['sensitivity']:.1f} %" in model_text and f"specificity {perf['specificity']:.1f} %" in model_text

    # Every API call the page made carried the session's bearer token, and nothing left this origin.
    token = driver.execute_script("return sessionStorage.getItem('dermq.token')")
    sent = api_requests(driver)
    posts = [r for r in sent if r["method"] == "POST"]
    assert [urlsplit(r["url"]).path for r in posts] == ["/diagnosis-support"]
    for request in sent:
        assert urlsplit(request["url"]).netloc == urlsplit(service.url).netloc
        headers = {k.lower(): v for k, v in request["headers"].items()}
        assert headers.get("authorization") == f"Bearer {token}", request["url"]

    screenshot(driver, "viewer-report-desktop.png", width=DESKTOP[0])
    screenshot(driver, "viewer-report-phone.png", width=PHONE[0], height=PHONE[1], mobile=True, scroll_to=".image-report")
    # On a phone the page does not scroll sideways.
    assert driver.execute_script("return document.documentElement.scrollWidth") <= PHONE[0]
    viewport(driver, *DESKTOP)


def severity_in_browser(driver, system: str, condition_code: str, site: str, inputs: dict[str, str]) -> None:
    from selenium.webdriver.support.ui import Select

    find(driver, ".tab[data-view=severity]").click()
    visible(driver, "#view-severity", 10)
    wait(driver, lambda d: len(Select(find(d, "#severity-system")).options) > 0, 20)
    Select(find(driver, "#severity-system")).select_by_value(system)
    Select(find(driver, "#severity-site")).select_by_value(site)
    Select(find(driver, "#severity-condition")).select_by_value(condition_code)
    for code, value in inputs.items():
        field = find(driver, f"#item-{code}")
        field.clear()
        field.send_keys(value)
    find(driver, "#severity-file").send_keys(str(IMAGE))
    wait(driver, lambda d: find(d, "#severity-submit").is_enabled(), 20)
    driver.execute_script("document.querySelector('#severity-result').replaceChildren()")
    find(driver, "#severity-submit").click()


def local_severity(api: httpx.Client, system: str, condition: str, site: str, items: dict) -> dict:
    body = {"payload": attachment(IMAGE), "bodySite": site, "knownCondition": {"conclusion": {"text": condition}},
            "scoringSystem": {system: {"questionnaireResponse": {"item": items}}}}
    response = api.post("/severity-assessment/automatic/local", json=body)
    assert response.status_code == 200, response.text
    return response.json()["patientEvolution"][system]


@needs_browser
def test_severity_result_with_masks(signed_in, api: httpx.Client) -> None:
    driver = signed_in
    expected = local_severity(api, "apasi", "Psoriasis", "armLeft", {"surface": 20})
    decimals = api.get("/questionnaires", params={"code": "apasi"}).json()[0]["decimals"]

    # The form offers only what the scoring system needs: apasi asks the clinician for the surface.
    severity_in_browser(driver, "apasi", "EA90", "armLeft", {"surface": "20"})
    assert [e.get_attribute("name") for e in driver.find_elements("css selector", "#severity-fields [name]")] == ["surface"]
    score = visible(driver, "[data-testid=severity-score]")
    assert score.text == f"{expected['score']['value']:.{decimals}f}"
    assert find(driver, "[data-testid=severity-category]").text == expected["score"]["interpretation"]["category"]
    rows = [r.text for r in driver.find_elements("css selector", "#severity-result .items tbody tr")]
    assert len(rows) == len(expected["item"])
    assert any(r.startswith(f"Erythema {expected['item']['erythema']['value']} AI") for r in rows)
    overlay = find(driver, "#severity-result img.overlay")
    wait(driver, lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", overlay), 20)
    assert overlay.get_attribute("src") == "data:image/jpeg;base64," + expected["media"]["attachment"]["segmentation"]["data"]
    screenshot(driver, "viewer-severity-desktop.png", width=DESKTOP[0])
    viewport(driver, *DESKTOP)


@needs_browser
def test_severity_detections_on_a_phone(signed_in, api: httpx.Client) -> None:
    driver = signed_in
    expected = local_severity(api, "aihs4", "Hidradenitis suppurativa", "armLeft", {})
    viewport(driver, *PHONE, mobile=True)
    severity_in_browser(driver, "aihs4", "ED92.0", "armLeft", {})
    score = visible(driver, "[data-testid=severity-score]")
    assert score.get_attribute("data-value") == str(expected["score"]["value"])
    boxes = driver.find_elements("css selector", "#severity-result svg.boxes rect")
    assert len(boxes) == len(expected["media"]["detection"]) > 0
    first = expected["media"]["detection"][0]["box"]
    assert [float(boxes[0].get_attribute(k)) for k in ("x", "y")] == [first["x1"], first["y1"]]
    screenshot(driver, "viewer-severity-phone.png", width=PHONE[0], height=PHONE[1], mobile=True,
               scroll_to="#severity-result")
    assert driver.execute_script("return document.documentElement.scrollWidth") <= PHONE[0]
    viewport(driver, *DESKTOP)


@needs_browser
def test_jobs_and_batches_with_live_progress(signed_in, api: httpx.Client) -> None:
    driver = signed_in
    # An asynchronous submission: 202, then the page follows the job to its report.
    find(driver, ".tab[data-view=diagnosis]").click()
    find(driver, "#diagnosis-async").click()
    driver.execute_script("document.querySelector('#report').replaceChildren()")
    find(driver, "#diagnosis-files").send_keys(str(SAMPLE_IMAGES[1]))
    find(driver, "#diagnosis-submit").click()
    visible(driver, "[data-testid=top-condition]")
    find(driver, "#diagnosis-async").click()

    # A batch of two images: its progress is followed live until done, with no reload.
    find(driver, ".tab[data-view=jobs]").click()
    # Earlier tests' batches are listed too, and the list fills in as it loads: follow the batch
    # this submission created, which the page remembers first in its session's batch list.
    remembered = lambda d: d.execute_script("return JSON.parse(sessionStorage.getItem('dermq.batches') || '[]')")  # noqa: E731
    before = remembered(driver)
    find(driver, "#batch-files").send_keys("\n".join(str(p) for p in SAMPLE_IMAGES[2:4]))
    find(driver, "#batch-submit").click()
    batch_id = wait(driver, lambda d: (ids := remembered(d)) and ids[0] not in before and ids[0])
    wait(driver, lambda d: find(d, f'[data-batch="{batch_id}"]').get_attribute("data-done") == "true")
    record = api.get(f"/batches/{batch_id}").json()
    assert record["done"] and record["counts"]["succeeded"] == 2
    assert wait(driver, lambda d: "2 of 2 finished" in find(d, f'[data-batch="{batch_id}"]').text, 5)

    # The jobs table matches the API's list, and a finished job's report opens in the viewer.
    listed = api.get("/jobs", params={"limit": 50}).json()["items"]
    for job in listed[:3]:
        row = f'#jobs tr[data-job="{job["id"]}"]'
        wait(driver, lambda d, row=row, status=job["status"]: find(d, row).get_attribute("data-status") == status, 10)
    one = next(j for j in listed if j["batchId"] == batch_id)
    find(driver, f'#jobs tr[data-job="{one["id"]}"] button').click()
    top = visible(driver, "[data-testid=top-condition]")
    assert top.text == api.get(f"/jobs/{one['id']}/result").json()["conclusion"][0]["code"]["text"]


@needs_browser
def test_an_expired_session_returns_to_sign_in(signed_in, service: Service) -> None:
    driver = signed_in
    driver.execute_script("sessionStorage.setItem('dermq.token', 'not-a-token')")
    find(driver, ".tab[data-view=jobs]").click()
    visible(driver, "#view-login", 20)
    assert "sign in again" in find(driver, "#notice").text
    assert driver.execute_script("return sessionStorage.getItem('dermq.token')") is None
    sign_in(driver, service)  # later tests in a session find it signed in again
