"""Driving Debian chromium with Playwright (never `playwright install`): launching it, and the steps the
browser tests share. The `browser` fixture (conftest.py) launches one per test process."""
import base64
import shutil
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]


def launch(pw):
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is not installed (make test installs it)")
    return pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)


def new_page(browser, url):
    page = browser.new_page(viewport={"width": 1500, "height": 1600})
    page.errors, page.requests = [], []
    page.on("request", lambda r: page.requests.append(r.url))
    page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.goto(url)
    return page


def new_phone_page(browser, url):
    """A 390 x 844 touch phone (device scale 3) in a context of its own, at `url`; `page.errors` collects its
    script errors."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=3, is_mobile=True,
                                  has_touch=True)
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.goto(url)
    return page


def cases_tab(page, dataset_title=None):
    # the page-load event (flags, the table, a link's case) covers the page until done: slow on a busy machine
    page.locator("button[role=tab]:has-text('Cases')").first.click(timeout=120_000)
    page.wait_for_selector("#cases .mrc[data-ready='1']", timeout=60_000)
    if dataset_title and dataset_title not in page.locator("#cases .mrc-title").inner_text():
        page.locator("#dataset input").click()
        page.get_by_role("option", name=dataset_title).click()
        page.wait_for_function("(t) => document.querySelector('#cases .mrc-title').innerText.startsWith(t)",
                               arg=dataset_title, timeout=30_000)


def viewer_shows(page, before):
    page.wait_for_function("(old) => { const r = document.querySelector('#viewer .mrv'); "
                           "return r && r.dataset.complete === '1' && r.dataset.analysis !== old; }", arg=before,
                           timeout=90_000)


def open_row(page, case):
    """Click a row of the Cases view and wait for the viewer to show that case."""
    before = analysis_id(page)
    page.locator(f"#cases .mrc-table tr[data-case='{case}']").click()
    viewer_shows(page, before)


def analysis_id(page):
    return page.locator("#viewer .mrv").get_attribute("data-analysis")


def listed_cases(page):
    return page.locator("#cases .mrc-table tbody tr").evaluate_all("rows => rows.map(r => r.dataset.case)")


# base64, not Array.from: a million numbers as a JSON array took seconds per canvas on a busy 2-core machine
CANVAS_BASE64 = """(plane) => {
  const c = document.querySelector(`#viewer .mrv-plane[data-plane=${plane}] canvas`);
  const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let text = '';
  for (let i = 0; i < data.length; i += 0x8000) text += String.fromCharCode.apply(null, data.subarray(i, i + 0x8000));
  return btoa(text);
}"""


def canvas_pixels(page, plane) -> np.ndarray:
    """The plane's visible canvas (512x512 at fit: each slice pixel drawn as 2x2), back at 256x256 RGB."""
    flat = np.frombuffer(base64.b64decode(page.evaluate(CANVAS_BASE64, plane)), dtype=np.uint8)
    return flat.reshape(512, 512, 4)[::2, ::2, :3]
