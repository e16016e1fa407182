"""A real browser (Debian chromium via Playwright) drives the real app: sample -> analyze -> probabilities,
move a slider, change the task, click a gallery item, download the zip; a screenshot for the README."""
import json
import os
import shutil
import zipfile
from pathlib import Path

import pytest

from server import running_app

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]
# `make figures` sets MRNET_SCREENSHOT to docs/figures/app.png; a plain test run writes into its temp folder.
SCREENSHOT = os.environ.get("MRNET_SCREENSHOT")
pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def page():
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is not installed (make test installs it)")
    from playwright.sync_api import sync_playwright
    with running_app() as (url, proc, log), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1500, "height": 1500}, accept_downloads=True)
        page = context.new_page()
        page.errors = []
        page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        page.goto(url)
        yield page
        browser.close()


def slider_value(page, plane):
    return int(page.locator(f"#slider-{plane} input[type=number]").input_value())


def move_slider(page, plane, value):
    box = page.locator(f"#slider-{plane} input[type=number]")
    box.fill(str(value))
    box.press("Enter")
    page.wait_for_function(f"document.querySelector('#caption-{plane}').innerText.startsWith('{plane} slice {value} of')")


def test_full_flow(page, tmp_path):
    page.get_by_text("research demo, not for diagnosis", exact=False).first.wait_for()
    # choose a sample and run
    page.locator("#sample input").click()
    page.get_by_role("option", name="Phantom — ACL and meniscal tears").click()
    page.locator("#analyze").click()
    predictions = page.locator("#predictions")
    predictions.get_by_text("Probability (fused)").wait_for(timeout=60_000)
    text = predictions.inner_text()
    for title in ("Abnormality", "ACL tear", "Meniscal tear", "Decisive plane", "Ground truth", "positive"):
        assert title in text
    # the sagittal slider starts at the decisive slice (shown in the caption)
    caption = page.locator("#caption-sagittal")
    caption.get_by_text("top slice").wait_for()
    top = int(caption.inner_text().rsplit("top slice:", 1)[1].strip().rstrip("."))
    assert slider_value(page, "sagittal") == top
    # move the slider: the caption follows
    target = 0 if top != 0 else 1
    move_slider(page, "sagittal", target)
    # change the task: the sliders jump to that task's decisive slice
    page.locator("#task").get_by_text("ACL tear").click()
    page.wait_for_function("!document.querySelector('#caption-sagittal').innerText.includes('slice %d of')" % target)
    # click a gallery item: its plane's slider moves there
    items = page.locator("#gallery button")
    items.first.wait_for()
    captions = page.locator("#gallery").inner_text()
    item = items.nth(1)
    page.wait_for_function("document.querySelectorAll('#gallery button')[1].innerText.includes(' · slice ')")
    plane, _, rest = item.inner_text().partition(" · slice ")
    plane, index = plane.strip(), int(rest.split(" ")[0])
    move_slider(page, plane, 0 if index != 0 else 1)   # away from the item's slice first
    item.click()
    page.wait_for_function(f"document.querySelector('#caption-{plane}').innerText.startsWith('{plane} slice {index} of')")
    assert slider_value(page, plane) == index
    # download the zip
    page.locator("#zip").click()
    link = page.locator("#zip-file a").first
    link.wait_for(timeout=60_000)
    with page.expect_download() as info:
        link.click()
    path = tmp_path / "overlays.zip"
    info.value.save_as(path)
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        report = json.loads(zf.read("report.json"))
    assert "acl/sagittal/000.png" in names and len([n for n in names if n.endswith(".png")]) > 60
    assert set(report["tasks"]) == {"abnormal", "acl", "meniscus"}
    assert "slice" in captions
    page.locator("#predictions").scroll_into_view_if_needed()
    shot = Path(SCREENSHOT) if SCREENSHOT else tmp_path / "app.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    assert not page.errors, page.errors


def test_bad_upload_shows_one_sentence_then_samples_work(page, tmp_path):
    bad = tmp_path / "axial.npy"
    bad.write_bytes(b"\x93NUMPY\x01\x00 this is not an array")
    page.locator("#files input[type=file]").set_input_files(str(bad))
    page.locator("#analyze").click()
    page.get_by_text("is not a valid .npy file", exact=False).first.wait_for(timeout=30_000)
    page.locator("#files button[aria-label='Clear']").first.click()
    page.errors.clear()


def test_every_sample_end_to_end(page):
    """Each sample through the browser; prints how long each took (a measurement, not an assertion)."""
    import time

    from mrnet.toolchain.samples import SAMPLES, sample_file
    timings = {}
    for sample in SAMPLES:
        page.locator("#sample input").click()
        page.get_by_role("option", name=sample.title).click()
        start = time.perf_counter()
        page.locator("#analyze").click()
        page.wait_for_function("(name) => document.querySelector('#predictions').innerText.includes('Exam: ' + name)",
                               arg=sample_file(sample).name, timeout=60_000)
        page.locator("#gallery button").first.wait_for()
        timings[sample.key] = round(time.perf_counter() - start, 2)
        text = page.locator("#predictions").inner_text()
        if sample.truth:
            assert "Ground truth" in text
        else:
            assert "Ground truth" not in text and "Missing plane(s): axial, coronal" in text
    print("browser end-to-end seconds per sample:", timings)
    assert not page.errors, page.errors
