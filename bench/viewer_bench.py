"""The browser viewer's speed, measured in Debian chromium (a benchmark, not a test: it prints, never asserts).

    .venv/bin/python bench/viewer_bench.py            # this checkout's app
    .venv/bin/python bench/viewer_bench.py --large    # also a 3 x 128-slice exam (page memory)

Prints JSON: slice step (key press handled -> new pixels on the canvas, and to the next frame), task / method /
opacity change, requests sent during all of them, Analyze click -> first overlay drawn, the payload's bytes.
"""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "support"))  # the tests' helpers (server, factories)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from browser import ARGS, CHROMIUM  # noqa: E402
from server import running_app  # noqa: E402

STEP = """async ([plane, key]) => {
  const stage = document.querySelector(`#viewer .mrv-plane[data-plane=${plane}] .mrv-stage`);
  const t0 = performance.now();
  stage.dispatchEvent(new KeyboardEvent('keydown', {key, bubbles: true}));
  const drawn = performance.now() - t0;
  await new Promise(r => requestAnimationFrame(() => r()));
  return [drawn, performance.now() - t0];
}"""
CHOICE = """async ([name, value]) => {
  const input = document.querySelector(`#viewer input[name=mrv-${name}][value=${value}]`);
  const t0 = performance.now();
  input.checked = true; input.dispatchEvent(new Event('change', {bubbles: true}));
  const drawn = performance.now() - t0;
  await new Promise(r => requestAnimationFrame(() => r()));
  return [drawn, performance.now() - t0];
}"""
OPACITY = """async (value) => {
  const input = document.querySelector('#viewer .mrv-opacity');
  const t0 = performance.now();
  input.value = String(value); input.dispatchEvent(new Event('input', {bubbles: true}));
  const drawn = performance.now() - t0;
  await new Promise(r => requestAnimationFrame(() => r()));
  return [drawn, performance.now() - t0];
}"""


def summary(samples):
    drawn, frame = [s[0] for s in samples], [s[1] for s in samples]
    return {"n": len(samples), "drawn_ms_median": round(statistics.median(drawn), 2), "drawn_ms_max": round(max(drawn), 2),
            "next_frame_ms_median": round(statistics.median(frame), 2), "next_frame_ms_max": round(max(frame), 2)}


def analyze_and_wait(page, title=None):
    if title:
        page.locator("#sample input").click()
        page.get_by_role("option", name=title).click()
    old = page.locator("#viewer .mrv").get_attribute("data-analysis")
    t0 = time.perf_counter()
    page.locator("#analyze").click()
    page.wait_for_function("(old) => { const r = document.querySelector('#viewer .mrv'); "
                           "return r.dataset.ready === '1' && r.dataset.analysis !== old; }", arg=old, timeout=120_000)
    elapsed = time.perf_counter() - t0
    page.in_browser_ms.append(float(page.locator("#viewer .mrv").get_attribute("data-load-ms")))
    return elapsed


def measure(page, plane, slices):
    # the remaining slices stream in after the first overlays: count requests only once they all have arrived
    page.wait_for_function("() => document.querySelector('#viewer .mrv').dataset.complete === '1'", timeout=120_000)
    page.requests.clear()
    steps = [page.evaluate(STEP, [plane, "ArrowDown" if i < slices - 2 else "ArrowUp"]) for i in range(min(60, 2 * slices))]
    switches = []
    for task, method in (("acl", "classic"), ("meniscus", "exact"), ("abnormal", "classic"), ("acl", "exact")) * 3:
        switches.append(page.evaluate(CHOICE, ["task", task]))
        switches.append(page.evaluate(CHOICE, ["method", method]))
        switches.append(page.evaluate(OPACITY, 0.2 + 0.1 * (len(switches) % 6)))
    page.wait_for_timeout(500)
    return {"slice_step": summary(steps), "task_method_opacity": summary(switches), "requests_during": len(page.requests)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--large", action="store_true", help="also a 3 x 128-slice exam")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    from mrnet import analyze, load_exam
    from mrnet.app.payload import viewer_payload
    from mrnet.core.hub import resolve
    from mrnet.sets.samples import BY_KEY, sample_file
    exam = load_exam([sample_file(BY_KEY["phantom-acl"])])
    small = {p: v[:32] for p, v in exam.volumes.items()}
    import tempfile

    from mrnet.app.pixels import PixelStore
    from mrnet.core.exam import Exam
    analysis = analyze(Exam(volumes=small), resolve("").weights)
    with tempfile.TemporaryDirectory() as tmp:  # as the app sends it: JSON + one slice file per plane
        payload = viewer_payload(analysis, store=PixelStore(Path(tmp)))
        out = {"event_json_bytes_3x32": len(json.dumps(payload)),
               "slice_file_bytes_3x32": sum(f.stat().st_size for f in Path(tmp).glob("*.bin"))}
    with running_app(process=True) as (url, proc, log), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1500, "height": 1400})
        page.requests, page.in_browser_ms = [], []
        page.on("request", lambda r: page.requests.append(r.url))
        page.goto(url)
        page.locator("#analyze").wait_for()
        waits = [analyze_and_wait(page, t) for t in ["Phantom — ACL tear", "Phantom — normal knee"] * 3]
        out["analyze_to_first_overlay_s"] = {"median": round(statistics.median(waits), 3), "max": round(max(waits), 3),
                                             "runs": [round(w, 3) for w in waits],
                                             "of_which_decode_and_draw_ms": page.in_browser_ms[:len(waits)]}
        out["phantom_40_slices"] = measure(page, "sagittal", 40)
        out["js_heap_mb"] = round(page.evaluate("performance.memory.usedJSHeapSize") / 2**20, 1)
        if args.large:
            from mrnet.phantom import generate_exam
            big = Path("/tmp/mrnet-bench-3x128.npz")
            np.savez(big, **generate_exam(4242, slices=128).volumes)
            page.locator("#files input[type=file]").set_input_files(str(big))
            out["analyze_3x128_s"] = round(analyze_and_wait(page), 3)
            out["large_3x128"] = measure(page, "axial", 128)
            out["js_heap_mb_3x128"] = round(page.evaluate("performance.memory.usedJSHeapSize") / 2**20, 1)
        browser.close()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
