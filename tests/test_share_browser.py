"""#35 Share, in Debian chromium against the real app: a visitor shares their upload; a colleague in another
browser context opens the view link and sees equal probabilities and equal canvas pixels on the shared slice; the
cap refuses another share in one sentence; the stop-sharing link deletes it; an expired share (the store's clock
moved by the test) is gone from disk."""
import sqlite3
import time
import urllib.parse

import numpy as np
import pytest

from mrnet.sets.shares import DAY, UNAVAILABLE

from browser import canvas_pixels, new_page
from server import running_app

pytestmark = pytest.mark.browser


def upload(page, path):
    page.locator("#files input[type=file]").set_input_files(str(path))
    before = page.locator("#viewer .mrv").get_attribute("data-analysis")
    page.locator("#analyze").click()
    page.wait_for_function("(old) => { const r = document.querySelector('#viewer .mrv'); "
                           "return r.dataset.complete === '1' && r.dataset.analysis !== old; }", arg=before, timeout=90_000)


def share(page) -> tuple[str, str]:
    """Share, confirm, and the two links as the page shows them (absolute)."""
    page.locator("#share").click()
    assert "no file names, no DICOM header text" in page.locator("#share-panel").first.inner_text()
    page.locator("#share-confirm").click()
    page.wait_for_selector("#share-links a", timeout=30_000)
    view = page.locator("#share-links a", has_text="View link").get_attribute("href")
    stop = page.locator("#share-links a", has_text="Stop-sharing link").get_attribute("href")
    base = page.url.split("?")[0]
    return urllib.parse.urljoin(base, view), urllib.parse.urljoin(base, stop)


def note(page) -> str:
    page.wait_for_selector("#link-note", timeout=90_000)
    return page.locator("#link-note").inner_text()


def test_a_shared_upload_opens_alike_elsewhere_is_capped_stopped_and_expires(browser, tmp_path):
    rng = np.random.default_rng(4)
    volume = rng.integers(0, 255, (12, 256, 256), dtype=np.uint8)   # 0.75 MB: one share fits in 1 MB, two do not
    exam = tmp_path / "sagittal.npy"
    np.save(exam, volume)
    shares = tmp_path / "shares"
    with running_app({"MRNET_SHARES": str(shares), "MRNET_SHARE_MB": "1", "MRNET_FLAGS": str(tmp_path / "f.sqlite")}) \
            as (url, proc, log):
        sharer = new_page(browser, url)
        assert not sharer.locator("#share").is_visible()
        upload(sharer, exam)
        view_link, stop_link = share(sharer)
        assert "share=" in view_link and "stop=" in stop_link and len(list(shares.glob("*.npz"))) == 1
        sharer.locator("#viewer .mrv-plane[data-plane=sagittal] .mrv-stage").focus()
        sharer.keyboard.press("Home")
        for _ in range(5):
            sharer.keyboard.press("ArrowDown")
        sharer.wait_for_function("() => new URL(document.querySelector('#viewer .mrv-link').value)"
                                 ".searchParams.get('slice') === '5'")
        link = sharer.locator("#viewer .mrv-link").input_value()    # the view link, with the view on screen
        assert urllib.parse.parse_qs(urllib.parse.urlparse(link).query)["share"] == \
            urllib.parse.parse_qs(urllib.parse.urlparse(view_link).query)["share"]

        colleague = browser.new_context(viewport={"width": 1500, "height": 1600}).new_page()
        colleague.goto(link)
        assert "A shared exam" in note(colleague)
        colleague.wait_for_function("() => document.querySelector('#viewer .mrv')?.dataset.complete === '1'",
                                    timeout=90_000)
        assert colleague.locator("#viewer .mrv-plane[data-plane=sagittal] .mrv-stage").get_attribute("data-slice") == "5"
        probabilities = lambda page: page.locator("#predictions").inner_text().split("Exam:")[0]  # noqa: E731
        assert probabilities(colleague) == probabilities(sharer) and "%" in probabilities(sharer)
        assert "Exam: shared exam" in colleague.locator("#predictions").inner_text()
        np.testing.assert_array_equal(canvas_pixels(colleague, "sagittal"), canvas_pixels(sharer, "sagittal"))
        # the colleague flags the shared exam, with a lesion mark: kept under its public id, never a file name
        colleague.locator("#viewer .mrv-mark-mode").click()
        shown = colleague.locator("#viewer .mrv-plane[data-plane=sagittal] .mrv-stage")
        box = shown.bounding_box()
        colleague.mouse.click(box["x"] + box["width"] / 4, box["y"] + box["height"] / 2)
        assert shown.get_attribute("data-mark") == "64,128,0,0"
        colleague.locator("#flag-verdict label:has-text('CAM off the lesion')").click()
        colleague.locator("#flag-save").click()
        colleague.wait_for_function("() => document.querySelector('#flag-note')?.innerText.includes('Saved')",
                                    timeout=30_000)
        public = urllib.parse.parse_qs(urllib.parse.urlparse(view_link).query)["share"][0][:16]
        assert f"Saved: shared exam {public}, " in colleague.locator("#flag-note").inner_text()
        with sqlite3.connect(tmp_path / "f.sqlite") as db:
            assert db.execute("SELECT dataset, split, case_id, plane, slice, verdict, mark_x, mark_y, pointing FROM "
                              "flags").fetchall() == [("shared", "shared", public, "sagittal", 5, "off", 64, 128, None)]

        another = new_page(browser, url)     # a third visitor: the cap is reached, nothing of theirs is kept
        upload(another, exam)
        another.locator("#share").click()
        another.locator("#share-confirm").click()
        another.get_by_text("Sharing is full on this server (1 MB of shared exams)", exact=False).first.wait_for(
            timeout=30_000)
        assert len(list(shares.glob("*.npz*"))) == 1

        sharer.goto(stop_link)
        sharer.locator("#stop-sharing").click()
        sharer.wait_for_selector("#stop-note:has-text('Sharing stopped')", timeout=30_000)
        assert not list(shares.glob("*.npz*"))
        colleague.goto(link)
        assert UNAVAILABLE in note(colleague)

        another = new_page(browser, url)     # room again; then the store's clock moves past the expiry
        upload(another, exam)
        view_link, _ = share(another)
        assert len(list(shares.glob("*.npz"))) == 1
        store = proc.demo.page.ctx.shares
        store.clock = lambda: time.time() + 7 * DAY + 1
        colleague.goto(view_link)
        assert UNAVAILABLE in note(colleague)
        assert not list(shares.glob("*.npz*"))   # deleted, not hidden
        assert not sharer.errors and not another.errors, sharer.errors + another.errors
