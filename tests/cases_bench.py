"""Benchmark of the Cases view in headless chromium on the real app (numbers for the README; nothing asserted).

1. Filtering, sorting and moving the threshold on a 1,250-case table (a synthetic set: 1,250 tiny exams and a
   score table of random probabilities made here, only to time the table; never shown as results).
2. Opening phantom cases: cold (generated, analysed and sent), prepared ahead (the next row, `n` pressed after
   a 3-second look at the current case), and cached (back with `p` to a case opened before).

    .venv/bin/python tests/cases_bench.py [--repeats 10]
"""
import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from mrnet.config import PLANES, TASKS  # noqa: E402
from mrnet.hub import bundled  # noqa: E402
from mrnet.scores import weights_digest, write_scores  # noqa: E402

from server import running_app  # noqa: E402
from test_browser import launch  # noqa: E402


def big_set(root: Path, n: int = 1250) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    tiny = np.zeros((1, 16, 16), np.uint8)
    for plane in PLANES:
        (root / "valid" / plane).mkdir(parents=True)
        for i in range(n):
            np.save(root / "valid" / plane / f"{i:04d}.npy", tiny)
    labels = {t: rng.integers(0, 2, n) for t in TASKS}
    for t in TASKS:
        (root / f"valid-{t}.csv").write_text("".join(f"{i},{labels[t][i]}\n" for i in range(n)))
    digest = weights_digest(bundled().weights)
    rows = [{"case": f"{i:04d}", "task": t, "label": int(labels[t][i]),
             "probability": round(float(np.clip(rng.normal(0.3 + 0.4 * labels[t][i], 0.25), 0, 1)), 6),
             "decisive_plane": "sagittal", "top_slice": 0, "p_axial": "", "p_coronal": "", "p_sagittal": "",
             "weights": digest, "content": "synthetic"} for i in range(n) for t in TASKS]
    write_scores(root / "scores.csv", rows)
    return root, root / "scores.csv"


def stats(name, values, unit="ms"):
    print(f"{name}: median {statistics.median(values):.1f} {unit}, max {max(values):.1f} {unit} (n={len(values)})")


def timed_action(page, js) -> float:
    """In-page time of one synchronous UI change, layout included."""
    return page.evaluate(f"() => {{ const t = performance.now(); {js}; document.body.offsetHeight;"
                         " return performance.now() - t; }")


def wait_viewer(page, before):
    page.wait_for_function("(old) => { const r = document.querySelector('#viewer .mrv'); "
                           "return r && r.dataset.ready === '1' && r.dataset.analysis !== old; }", arg=before,
                           timeout=120_000)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=10)
    a = parser.parse_args()
    from playwright.sync_api import sync_playwright
    with tempfile.TemporaryDirectory() as tmp:
        data, scores = big_set(Path(tmp) / "big")
        env = {"MRNET_DATA": str(data), "MRNET_SCORES": str(scores), "MRNET_FLAGS": str(Path(tmp) / "flags.sqlite"),
               "MRNET_SAMPLE_DIR": str(Path(tmp) / "samples")}  # a fresh cache: cold opens generate the phantom
        with running_app(env) as (url, proc, log), sync_playwright() as pw:
            browser = launch(pw)
            page = browser.new_page(viewport={"width": 1500, "height": 1600})
            page.goto(url)
            page.locator("button[role=tab]:has-text('Cases')").first.click()
            page.wait_for_selector("#cases .mrc[data-ready='1']", timeout=60_000)
            print(page.locator("#cases .mrc-title").inner_text())
            root = "document.querySelector('#cases .mrc')"
            threshold, sort, filt = [], [], []
            for i in range(a.repeats):
                threshold.append(timed_action(page, f"const el = {root}.querySelector('.mrc-threshold'); "
                                              f"el.value = '{0.3 + 0.04 * i:.2f}'; el.dispatchEvent(new Event('input'))"))
                sort.append(timed_action(page, f"const el = {root}.querySelector('.mrc-sort'); "
                                         f"el.value = ['prob', 'error', 'case'][{i % 3}]; el.dispatchEvent(new Event('change'))"))
                filt.append(timed_action(page, f"{root}.querySelector('button[data-outcome={['FN', 'TP'][i % 2]}]').click()"))
            stats("1,250 rows: threshold moved, table redrawn", threshold)
            stats("1,250 rows: sort changed", sort)
            stats("1,250 rows: confusion-matrix filter toggled", filt)

            page.locator("#dataset input").click()
            page.get_by_role("option", name="Phantom validation set (60 synthetic knees)").click()
            page.wait_for_function("() => document.querySelector('#cases .mrc-title').innerText.startsWith('Phantom')")
            cold, ahead, cached = [], [], []
            for i in range(a.repeats):  # rows far apart: nothing prepared
                before = page.locator("#viewer .mrv").get_attribute("data-analysis")
                t = time.perf_counter()
                page.locator(f"#cases .mrc-table tr[data-case='{5 * i + 2:04d}']").click()
                wait_viewer(page, before)
                cold.append(time.perf_counter() - t)
            page.locator("#cases .mrc-table tr[data-case='0050']").click()
            page.wait_for_timeout(3000)
            for i in range(min(a.repeats, 9)):
                page.wait_for_timeout(3000)  # a reviewer looks at the case; the next one is prepared meanwhile
                before = page.locator("#viewer .mrv").get_attribute("data-analysis")
                t = time.perf_counter()
                page.keyboard.press("n")
                wait_viewer(page, before)
                ahead.append(time.perf_counter() - t)
            for i in range(min(a.repeats, 7)):  # back through cases opened before (the server keeps 8)
                page.wait_for_timeout(500)
                before = page.locator("#viewer .mrv").get_attribute("data-analysis")
                t = time.perf_counter()
                page.keyboard.press("p")
                wait_viewer(page, before)
                cached.append(time.perf_counter() - t)
            stats("phantom case, cold (generate + analyse + send + draw)", [1000 * x for x in cold])
            stats("phantom case, next row prepared ahead", [1000 * x for x in ahead])
            stats("phantom case, opened before (cached)", [1000 * x for x in cached])
            browser.close()


if __name__ == "__main__":
    main()
