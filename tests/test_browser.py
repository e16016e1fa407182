"""A real browser (Debian chromium via Playwright) drives the real app: sample -> analyze -> probabilities and
the slice viewer drawn in the browser: wheel, keys, task/method/opacity with no request to the server, the
canvas against the server's own overlay, window/level, zoom, swipe, bars, top slices, the zip, a screenshot."""
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from browser import canvas_pixels
from server import running_app

# `make figures` sets MRNET_SCREENSHOT to docs/figures/app.png; a plain test run writes into its temp folder.
SCREENSHOT = os.environ.get("MRNET_SCREENSHOT")
SAMPLE = "Phantom — ACL and meniscal tears"
pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def page(browser):
    with running_app() as (url, proc, log):
        context = browser.new_context(viewport={"width": 1500, "height": 1500}, accept_downloads=True)
        page = context.new_page()
        page.errors, page.requests = [], []
        page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        page.on("request", lambda r: page.requests.append(r.url))
        page.goto(url)
        yield page
        context.close()


def analyze_sample(page, title):
    page.locator("#sample input").click()
    page.get_by_role("option", name=title).click()
    before = page.locator("#viewer .mrv").get_attribute("data-analysis")
    page.locator("#analyze").click()
    page.wait_for_function("(old) => { const r = document.querySelector('#viewer .mrv'); "
                           "return r.dataset.complete === '1' && r.dataset.analysis !== old; }", arg=before, timeout=60_000)


def shows_sample(page):
    """The tests below read the sample's analysis; each test process (pytest-xdist worker) runs it once."""
    if page.locator("#viewer .mrv-plane").count() != 3 or SAMPLE.split("— ")[1] not in page.locator("#sample input").input_value():
        analyze_sample(page, SAMPLE)


def caption(page, plane):
    return page.locator(f"#caption-{plane}").inner_text()


def shown_slice(page, plane) -> int:
    return int(page.locator(f"#viewer .mrv-plane[data-plane={plane}] .mrv-stage").get_attribute("data-slice"))


def choose(page, name, value):
    page.locator(f"#viewer input[name=mrv-{name}][value={value}]").check()


def set_range(page, selector, value):
    page.evaluate("([sel, v]) => { const el = document.querySelector(sel); el.value = v;"
                  " el.dispatchEvent(new Event('input', {bubbles: true})); }", [selector, str(value)])


@pytest.fixture(scope="module")
def server_view():
    """The same analysis in this process: what the server would draw (bundled weights, same compute)."""
    from mrnet import analyze, compute_for, load_exam
    from mrnet.core.hub import resolve
    from mrnet.core.render import Renderer
    from mrnet.sets.samples import BY_TITLE, sample_file
    return Renderer(analyze(load_exam([sample_file(BY_TITLE[SAMPLE])]), resolve("").weights, compute_for()))


def test_viewer_scrolls_and_switches_in_the_browser_only(page, server_view):
    page.get_by_text("research demo, not for diagnosis", exact=False).first.wait_for()
    analyze_sample(page, SAMPLE)
    text = page.locator("#predictions").inner_text()
    for title in ("Abnormality", "ACL tear", "Meniscal tear", "Decisive plane", "Ground truth", "positive"):
        assert title in text
    analysis = server_view.analysis
    task = analysis.tasks["abnormal"]
    for plane, result in task.planes.items():  # every plane opens at its decisive slice, marked on the track
        assert shown_slice(page, plane) == result.top_slice
        assert caption(page, plane).startswith(f"{plane} slice {result.top_slice} of ")
    top, n = task.planes["sagittal"].top_slice, len(task.planes["sagittal"].contributions)
    stage = page.locator("#viewer .mrv-plane[data-plane=sagittal] .mrv-stage")
    page.requests.clear()
    stage.hover()
    page.mouse.wheel(0, 120 if top < n - 1 else -120)
    expected = top + 1 if top < n - 1 else top - 1
    page.wait_for_function(f"document.querySelector('#caption-sagittal').innerText.startsWith('sagittal slice {expected} of')")
    stage.focus()
    page.keyboard.press("Home")
    assert shown_slice(page, "sagittal") == 0 and caption(page, "sagittal").startswith("sagittal slice 0 of")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("PageDown")
    assert shown_slice(page, "sagittal") == 6
    assert page.locator("#viewer .mrv-plane[data-plane=sagittal] .mrv-slider").input_value() == "6"
    page.keyboard.press("End")
    assert shown_slice(page, "sagittal") == n - 1
    # task, method and opacity: the viewer redraws, the captions follow, and the server hears nothing
    choose(page, "task", "acl")
    acl_top = analysis.tasks["acl"].planes["coronal"].top_slice
    assert caption(page, "coronal").endswith(f"top slice: {acl_top}")
    choose(page, "method", "classic")
    set_range(page, "#viewer .mrv-opacity", 0.7)
    bar = page.locator("#viewer .mrv-plane[data-plane=axial] .mrv-bars rect.hit").nth(3)
    bar.click()
    assert shown_slice(page, "axial") == 3
    page.wait_for_timeout(400)  # past the view's write-back to props.value: that must not call the server either
    assert page.requests == [], page.requests
    assert not page.errors, page.errors


def test_canvas_matches_the_server_overlay_and_the_raw_slice(page, server_view):
    """At opacity 0 the canvas is the raw slice exactly; at 0.4 it is the server's overlay() within 2 grey levels
    on at most 0.5 % of the pixels (the browser interpolates in double precision, cv2 in float32; a CAM value
    within rounding of .5 can round to the next level, and JET's steepest channel climbs 5 levels per CAM
    level, x 0.4 opacity: 2)."""
    shows_sample(page)
    analysis = server_view.analysis
    choose(page, "mode", "overlay")
    for task, method, plane, index in (("acl", "exact", "sagittal", 4), ("meniscus", "classic", "coronal", 9),
                                       ("abnormal", "exact", "axial", analysis.tasks["abnormal"].planes["axial"].top_slice)):
        choose(page, "task", task)
        choose(page, "method", method)
        stage = page.locator(f"#viewer .mrv-plane[data-plane={plane}] .mrv-stage")
        stage.focus()
        page.keyboard.press("Home")
        for _ in range(index):
            page.keyboard.press("ArrowDown")
        set_range(page, "#viewer .mrv-opacity", 0)
        raw = analysis.exam.volumes[plane][index]
        np.testing.assert_array_equal(canvas_pixels(page, plane), np.repeat(raw[:, :, None], 3, axis=2))
        set_range(page, "#viewer .mrv-opacity", 0.4)
        diff = np.abs(canvas_pixels(page, plane).astype(int) - server_view.overlay(task, plane, index, method, 0.4))
        assert diff.max() <= 2 and (diff > 0).mean() <= 0.005, (task, method, plane, diff.max(), (diff > 0).mean())
    assert not page.errors, page.errors


def test_window_level_zoom_swipe_and_top_slices(page, server_view):
    shows_sample(page)
    plane = "sagittal"
    stage = page.locator(f"#viewer .mrv-plane[data-plane={plane}] .mrv-stage")
    before = canvas_pixels(page, plane)
    box = stage.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 - 60, box["y"] + box["height"] / 2 - 40, steps=4)
    page.mouse.up()
    assert "W " in page.locator("#viewer .mrv-wl").inner_text()
    windowed = canvas_pixels(page, plane)
    assert (windowed != before).mean() > 0.2  # a narrower window, a higher level: most pixels change
    page.locator("#viewer .mrv-reset-wl").click()
    np.testing.assert_array_equal(canvas_pixels(page, plane), before)
    zoom = page.locator(f"#viewer .mrv-plane[data-plane={plane}] .mrv-zoom")
    zoom.locator("[data-zoom=in]").click()
    assert (canvas_pixels(page, plane) != before).mean() > 0.2
    zoom.locator("[data-zoom=fit]").click()
    np.testing.assert_array_equal(canvas_pixels(page, plane), before)
    # swipe: the overlay left of the divider, the raw slice right of it
    choose(page, "mode", "swipe")
    set_range(page, "#viewer .mrv-swipe", 100)
    swiped, index = canvas_pixels(page, plane), int(stage.get_attribute("data-slice"))
    raw = server_view.analysis.exam.volumes[plane][index]
    np.testing.assert_array_equal(swiped[:, 100:], np.repeat(raw[:, 100:, None], 3, axis=2))
    np.testing.assert_array_equal(swiped[:, :100], before[:, :100])
    choose(page, "mode", "overlay")
    # a top slice of the strip moves its plane there
    item = page.locator("#viewer .mrv-strip button").nth(1)
    target_plane, target = item.get_attribute("data-plane"), int(item.get_attribute("data-slice"))
    item.click()
    assert shown_slice(page, target_plane) == target
    assert not page.errors, page.errors


def download_zip(page, tmp_path) -> Path:
    """Prepare zip, then download it as the visitor would."""
    page.locator("#zip").click()
    link = page.locator("#zip-file a").first
    link.wait_for(timeout=60_000)
    with page.expect_download() as info:
        link.click()
    path = tmp_path / "overlays.zip"
    info.value.save_as(path)
    return path


def test_zip_uses_the_viewer_method_and_opacity(page, tmp_path):
    shows_sample(page)
    choose(page, "method", "classic")
    set_range(page, "#viewer .mrv-opacity", 0.6)
    page.wait_for_timeout(400)  # the view rests: it is written back for the server to read
    with zipfile.ZipFile(download_zip(page, tmp_path)) as zf:
        names = zf.namelist()
        report = json.loads(zf.read("report.json"))
    assert "acl/sagittal/000.png" in names and len([n for n in names if n.endswith(".png")]) > 60
    assert report["method"] == "classic" and set(report["tasks"]) == {"abnormal", "acl", "meniscus"}
    choose(page, "method", "exact")
    set_range(page, "#viewer .mrv-opacity", 0.4)
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
    from mrnet.sets.samples import SAMPLES, sample_file
    for sample in SAMPLES:
        analyze_sample(page, sample.title)
        page.wait_for_function("(name) => document.querySelector('#predictions').innerText.includes('Exam: ' + name)",
                               arg=sample_file(sample).name, timeout=60_000)
        text = page.locator("#predictions").inner_text()
        planes = page.locator("#viewer .mrv-plane").evaluate_all("els => els.map(e => e.dataset.plane)")
        if sample.truth:
            assert "Ground truth" in text and planes == ["axial", "coronal", "sagittal"]
        else:
            assert "Ground truth" not in text and "Missing plane(s): axial, coronal" in text and planes == ["sagittal"]
    assert not page.errors, page.errors


def test_a_broken_payload_is_said_and_the_next_analysis_still_loads(page, tmp_path):
    """No silent fallback and no stuck viewer: the viewer script, run on its own page, says that a corrupt
    payload cannot be shown (and logs it), then draws the next, good payload."""
    from mrnet.app.components import web_assets
    from mrnet.app.payload import viewer_payload
    from mrnet.core.analysis import analyze
    from mrnet.core.compute import compute_for
    from mrnet.core.exam import Exam
    from mrnet.core.hub import resolve
    html, css, js = web_assets("viewer")
    exam = Exam(volumes={"sagittal": np.random.default_rng(0).integers(0, 255, (6, 256, 256), dtype=np.uint8)})
    good = viewer_payload(analyze(exam, resolve("").weights, compute_for("cpu", "fp32")))
    broken = json.loads(json.dumps(good))
    broken["planes"]["sagittal"]["passes"][0]["pixels"] = "%%% not base64 %%%"
    (tmp_path / "page.html").write_text(
        f"<style>{css}</style><div id='el'>{html}</div><script>const props = {{value: null, data: {json.dumps(broken)}}};"
        f"let changed = null; (function (element, props, watch) {{ {js} }})(document.getElementById('el'), props, "
        "(key, fn) => { if (key === 'data') changed = fn; });</script>")
    alone = page.context.browser.new_page()
    errors = []
    alone.on("console", lambda m: m.type == "error" and errors.append(m.text))
    alone.goto((tmp_path / "page.html").as_uri())
    alone.wait_for_function("() => !document.querySelector('.mrv-error').hidden", timeout=10_000)
    assert "could not be shown" in alone.locator(".mrv-error").inner_text()
    assert errors and "viewer:" in errors[0]
    alone.evaluate(f"() => {{ props.data = {json.dumps(good)}; changed(); }}")
    alone.wait_for_function("() => document.querySelector('.mrv').dataset.complete === '1'", timeout=10_000)
    assert alone.locator(".mrv-error").is_hidden() and alone.locator(".mrv-plane").count() == 1
    alone.close()


def test_the_colour_blind_palette_is_drawn_kept_in_the_link_and_used_in_the_zip(page, browser, server_view, tmp_path):
    """#38: viridis beside jet. The canvas is the server's viridis overlay (as jet's is, test above), the link
    carries it, a colleague's page opens in it, and the zip's PNGs are drawn with it."""
    import cv2
    shows_sample(page)
    choose(page, "mode", "overlay")
    choose(page, "task", "acl")
    choose(page, "method", "exact")
    stage = page.locator("#viewer .mrv-plane[data-plane=sagittal] .mrv-stage")
    stage.focus()
    page.keyboard.press("Home")
    set_range(page, "#viewer .mrv-opacity", 0.4)
    jet = canvas_pixels(page, "sagittal")
    choose(page, "palette", "viridis")
    shown = canvas_pixels(page, "sagittal")
    diff = np.abs(shown.astype(int) - server_view.overlay("acl", "sagittal", 0, "exact", 0.4, "viridis"))
    assert diff.max() <= 2 and (diff > 0).mean() <= 0.005, (diff.max(), (diff > 0).mean())
    assert (np.abs(shown.astype(int) - jet) > 10).mean() > 0.1  # not jet
    page.wait_for_function("() => new URL(document.querySelector('#viewer .mrv-link').value).searchParams"
                           ".get('palette') === 'viridis'")
    link = page.locator("#viewer .mrv-link").input_value()
    other = browser.new_context(viewport={"width": 1500, "height": 1000}).new_page()
    other.goto(link)
    other.wait_for_function("() => document.querySelector('#viewer .mrv')?.dataset.ready === '1'", timeout=90_000)
    assert other.locator("#viewer input[name=mrv-palette][value=viridis]").is_checked()
    np.testing.assert_array_equal(canvas_pixels(other, "sagittal"), shown)
    other.context.close()
    with zipfile.ZipFile(download_zip(page, tmp_path)) as zf:
        png = cv2.imdecode(np.frombuffer(zf.read("acl/sagittal/000.png"), np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
    np.testing.assert_array_equal(png, server_view.overlay("acl", "sagittal", 0, "exact", 0.4, "viridis"))
    choose(page, "palette", "jet")
    assert not page.errors, page.errors


def test_a_samples_link_reopens_the_same_view(page, browser):
    """#35: a sample's view has a link like a case's; a colleague opening it sees the same sample, task, method,
    plane and slice. Nothing is stored for it."""
    shows_sample(page)
    choose(page, "task", "meniscus")
    choose(page, "method", "classic")
    page.locator("#viewer .mrv-plane[data-plane=coronal] .mrv-stage").focus()
    page.keyboard.press("Home")
    page.keyboard.press("ArrowDown")
    page.wait_for_function("() => { const v = document.querySelector('#viewer .mrv-link').value; if (!v) return false; "
                           "const q = new URL(v).searchParams; return q.get('plane') === 'coronal' && q.get('slice') === '1' "
                           "&& q.get('method') === 'classic'; }")
    link = page.locator("#viewer .mrv-link").input_value()
    import urllib.parse
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(link).query))
    assert query == {"sample": "phantom-acl-meniscus", "task": "meniscus", "method": "classic", "plane": "coronal",
                     "slice": "1"}
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    other = context.new_page()
    errors = []
    other.on("pageerror", lambda e: errors.append(str(e)))
    other.goto(link)
    other.wait_for_function("() => document.querySelector('#viewer .mrv')?.dataset.ready === '1'", timeout=90_000)
    assert other.locator("#viewer .mrv-plane[data-plane=coronal] .mrv-stage").get_attribute("data-slice") == "1"
    assert other.locator("#viewer input[name=mrv-task][value=meniscus]").is_checked()
    assert other.locator("#viewer input[name=mrv-method][value=classic]").is_checked()
    assert SAMPLE.split("— ")[1] in other.locator("#sample input").input_value()
    bad = context.new_page()
    bad.goto(link.split("?")[0] + "?sample=nobody")
    bad.wait_for_selector("#link-note", timeout=60_000)
    assert "no sample patient 'nobody'" in bad.locator("#link-note").inner_text()
    assert not errors
    context.close()
