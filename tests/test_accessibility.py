"""#38 The front door: axe-core (the copy bundled by axe-playwright-python) finds no WCAG violation on the real
page in Debian chromium: at desktop size and 390 px wide with touch, before and after an analysis, and on the
Cases view; each slice image is described by its caption."""
from importlib.resources import files

import pytest

from browser import cases_tab
from server import running_app

pytestmark = pytest.mark.browser
AXE = (files("axe_playwright_python") / "axe.min.js").read_text()


def assert_no_violation(page) -> None:
    """Violations that last: Gradio's loading overlay fades an event's outputs for a moment after it ends."""
    for _ in range(6):
        found = violations(page)
        if not found:
            return
        page.wait_for_timeout(500)
    assert found == [], found


def violations(page) -> list[str]:
    if not page.evaluate("() => typeof axe !== 'undefined'"):
        page.add_script_tag(content=AXE)
    # the events are over first (the page load's among them): their outputs' loading overlays are not the page
    page.wait_for_function("() => document.querySelector('#viewer [data-testid=status-tracker]')?.classList"
                           ".contains('hide') && !document.querySelector('.pending, .generating')", timeout=60_000)
    return page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations.map(v => "
                         "`${v.id} (${v.impact}): ` + v.nodes.map(n => n.target.join(' ') + ' ' + "
                         "(n.any[0] ? n.any[0].message : '')).join('; '))")


@pytest.mark.parametrize("width", [1400, 390])
def test_axe_core_finds_no_violation_before_and_after_an_analysis_and_on_the_cases_view(browser, width):
    phone = width < 500
    with running_app() as (url, proc, log):
        context = browser.new_context(viewport={"width": width, "height": 1000}, is_mobile=phone, has_touch=phone)
        page = context.new_page()
        page.goto(url)
        page.wait_for_selector("#analyze")
        assert_no_violation(page)
        page.locator("#analyze").click()
        page.wait_for_function("() => document.querySelector('#viewer .mrv')?.dataset.complete === '1'", timeout=90_000)
        assert_no_violation(page)
        # the canvas's text: each plane's image is described by its caption (slice, contribution, top slice)
        for plane in ("axial", "coronal", "sagittal"):
            stage = page.locator(f"#viewer .mrv-plane[data-plane={plane}] .mrv-stage")
            described = page.locator("#" + stage.get_attribute("aria-describedby")).inner_text()
            assert described.startswith(f"{plane} slice ") and "top slice" in described, described
        cases_tab(page)
        assert_no_violation(page)
        context.close()


def tab_to(page, selector: str, limit: int = 120) -> int:
    """Press Tab until the focus is on `selector`: how many presses it took (the keyboard's own path)."""
    for presses in range(1, limit + 1):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement?.matches(s) ?? false", selector):
            return presses
    raise AssertionError(f"{limit} presses of Tab never reached {selector}")


def test_a_keyboard_alone_analyses_a_sample_scrolls_slices_and_changes_the_method(browser):
    """#38: no pointer at all: Tab to Analyze and press Enter; Tab to a plane's slices and scroll them with the
    arrow keys; Tab to the method and change it with an arrow key."""
    with running_app() as (url, proc, log):
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        page.wait_for_selector("#analyze")
        tab_to(page, "#analyze")
        page.keyboard.press("Enter")
        page.wait_for_function("() => document.querySelector('#viewer .mrv')?.dataset.complete === '1'", timeout=90_000)
        stage = "#viewer .mrv-plane[data-plane=axial] .mrv-stage"
        tab_to(page, stage)
        before = int(page.locator(stage).get_attribute("data-slice"))
        for _ in range(3):
            page.keyboard.press("ArrowDown")
        page.wait_for_function("([s, n]) => Number(document.querySelector(s).dataset.slice) === n",
                               arg=[stage, min(before + 3, int(page.locator("#viewer .mrv-plane[data-plane=axial] "
                                                                          ".mrv-slider").get_attribute("max")))])
        tab_to(page, "#viewer input[name=mrv-method]:checked")  # on round the page to the method, above the slices
        chosen = page.locator("#viewer input[name=mrv-method]:checked").get_attribute("value")
        page.keyboard.press("ArrowRight")
        assert page.locator("#viewer input[name=mrv-method]:checked").get_attribute("value") != chosen
