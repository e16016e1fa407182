"""Benchmark of the Cases view in headless chromium on the real app (numbers for the README; nothing asserted).

1. Filtering, sorting and moving the threshold on a 1,250-case table (a synthetic set: 1,250 tiny exams and a
   score table of random probabilities made here, only to time the table; never shown as results).
2. Opening cases: phantom exams on disk in MRNet's layout, cold (read, analysed, sent, drawn); the next row
   prepared ahead (`n` pressed after a 3-second look at the current case); cached (back with `p` to a case
   opened before); and the generated default set's cases, cold (generated first).
3. Compare mode on the bundled pair (`--compare`, or `--only-compare`): cold opens of the generated set's cases
   with compare mode off and on, interleaved (to A's first overlays, and until B's maps are there); the next
   row prepared ahead in compare mode; switching the viewer between A's and B's maps (in-page time of the
   redraw of every plane, the bars and the top slices), and the requests sent meanwhile.

    .venv/bin/python bench/cases_bench.py [--repeats 10] [--compare | --only-compare]
"""
import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "support"))  # the tests' helpers (server, factories)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from mrnet.core.config import PLANES, TASKS  # noqa: E402
from mrnet.core.hub import bundled  # noqa: E402
from mrnet.sets.scores import weights_digest, write_scores  # noqa: E402

from browser import launch  # noqa: E402
from server import running_app  # noqa: E402


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


def open_row(page, case) -> float:
    before = page.locator("#viewer .mrv").get_attribute("data-analysis")
    t = time.perf_counter()
    page.locator(f"#cases .mrc-table tr[data-case='{case}']").click()
    wait_viewer(page, before)
    return 1000 * (time.perf_counter() - t)


def open_compared(page, open_it) -> tuple[float, float]:
    """Compare mode: ms to A's first overlays, and ms until B's maps are in the viewer."""
    before = page.locator("#viewer .mrv").get_attribute("data-analysis")
    t = time.perf_counter()
    open_it()
    wait_viewer(page, before)
    first = 1000 * (time.perf_counter() - t)
    page.wait_for_selector("#viewer .mrv[data-compare='ready']", timeout=120_000)
    return first, 1000 * (time.perf_counter() - t)


def compare_section(browser, n: int, tmp: Path) -> None:
    env = {"MRNET_FLAGS": str(tmp / "flags-compare.sqlite"), "MRNET_SAMPLE_DIR": str(tmp / "samples-compare")}
    with running_app(env, process=True) as (url, proc, log):
        page = cases_page(browser, url)
        requests = []
        page.on("request", lambda r: requests.append(r.url))
        toggle = page.locator("#cases .mrc-compare")
        single, first, both = [], [], []
        for i in range(min(n, 14)):  # interleaved, never a case opened or prepared before: off and on in turn
            page.wait_for_timeout(5000)  # the previous open's prefetch of its next row is done: an idle server
            toggle.uncheck()
            single.append(open_row(page, f"{4 * i:04d}"))
            page.wait_for_timeout(5000)
            toggle.check()
            a, b = open_compared(page, lambda: page.locator(f"#cases .mrc-table tr[data-case='{4 * i + 2:04d}']").click())
            first.append(a)
            both.append(b)
        ahead = []
        for _ in range(n):
            page.wait_for_timeout(3000)  # the next row is prepared with both weights meanwhile
            ahead.append(open_compared(page, lambda: page.keyboard.press("n"))[1])
        page.locator("#viewer .mrv-stage").first.focus()
        page.wait_for_timeout(1000)
        requests.clear()
        root = "document.querySelector('#viewer .mrv')"
        switch = [timed_action(page, f"{root}.querySelector('input[name=mrv-maps][value={'ab'[i % 2]}]').click()")
                  for i in range(4 * n)]
        page.wait_for_timeout(500)
        sent = len(requests)
    stats("generated phantom case, cold, compare mode off", single)
    stats("the same kind of case, compare mode on: to A's first overlays", first)
    stats("the same kind of case, compare mode on: until B's maps are there", both)
    print(f"compare on / off, medians: to A's overlays {statistics.median(first) / statistics.median(single):.2f}x, "
          f"until B's maps {statistics.median(both) / statistics.median(single):.2f}x")
    stats("compare mode: next row prepared ahead, until B's maps are there", ahead)
    stats("compare mode: A <-> B switch redrawn (3 planes, bars, top slices)", switch)
    print(f"requests during {len(switch)} A/B switches: {sent}")


def press(page, key) -> float:
    before = page.locator("#viewer .mrv").get_attribute("data-analysis")
    t = time.perf_counter()
    page.keyboard.press(key)
    wait_viewer(page, before)
    return 1000 * (time.perf_counter() - t)


def choose_set(page, title):
    page.locator("#dataset input").click()
    page.get_by_role("option", name=title).click()
    page.wait_for_function("(t) => document.querySelector('#cases .mrc-title').innerText.startsWith(t)", arg=title)


def cases_page(browser, url):
    page = browser.new_page(viewport={"width": 1500, "height": 1600})
    page.goto(url)
    page.locator("button[role=tab]:has-text('Cases')").first.click()
    page.wait_for_selector("#cases .mrc[data-ready='1']", timeout=60_000)
    return page


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--compare", action="store_true", help="also compare mode on the bundled pair")
    parser.add_argument("--only-compare", action="store_true", help="compare mode alone")
    a = parser.parse_args()
    n = a.repeats
    from playwright.sync_api import sync_playwright
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        browser = launch(pw)
        if a.compare or a.only_compare:
            compare_section(browser, n, Path(tmp))
        if a.only_compare:
            browser.close()
            return
        data, scores = big_set(Path(tmp) / "big")
        env = {"MRNET_DATA": str(data), "MRNET_SCORES": str(scores), "MRNET_FLAGS": str(Path(tmp) / "flags.sqlite")}
        with running_app(env, process=True) as (url, proc, log):
            page = cases_page(browser, url)
            print(page.locator("#cases .mrc-title").inner_text())
            root = "document.querySelector('#cases .mrc')"
            threshold, sort, filt = [], [], []
            for i in range(n):
                threshold.append(timed_action(page, f"const el = {root}.querySelector('.mrc-threshold'); "
                                              f"el.value = '{0.3 + 0.04 * i:.2f}'; el.dispatchEvent(new Event('input'))"))
                sort.append(timed_action(page, f"const el = {root}.querySelector('.mrc-sort'); "
                                         f"el.value = ['prob', 'error', 'case'][{i % 3}]; el.dispatchEvent(new Event('change'))"))
                filt.append(timed_action(page, f"{root}.querySelector('button[data-outcome={['FN', 'TP'][i % 2]}]').click()"))
            stats("1,250 rows: threshold moved, table redrawn", threshold)
            stats("1,250 rows: sort changed", sort)
            stats("1,250 rows: confusion-matrix filter toggled", filt)

        # Phantom exams on disk in MRNet's layout (as a hospital's set would be), and the generated default set.
        disk = Path(tmp) / "phantoms"
        subprocess.run([sys.executable, "-m", "mrnet", "phantom", "--out", str(disk), "--n-train", "0",
                        "--n-valid", str(2 * n + 2), "--seed", "3"], check=True, capture_output=True)
        env = {"MRNET_DATA": str(disk), "MRNET_FLAGS": str(Path(tmp) / "flags.sqlite"),
               "MRNET_SAMPLE_DIR": str(Path(tmp) / "samples")}  # a fresh cache: generated cases are generated
        with running_app(env, process=True) as (url, proc, log):
            page = cases_page(browser, url)
            cold_disk = [open_row(page, f"{2 * i + 1:04d}") for i in range(n)]  # every other row: nothing prepared
            page.wait_for_timeout(3000)
            ahead, cached = [], []
            open_row(page, "0000")
            for _ in range(n):
                page.wait_for_timeout(3000)  # a reviewer looks at the case; the next row is prepared meanwhile
                ahead.append(press(page, "n"))
            for _ in range(min(n, 7)):       # back through cases opened before (the server keeps 8)
                page.wait_for_timeout(500)
                cached.append(press(page, "p"))
            choose_set(page, "Phantom validation set (60 synthetic knees)")
            cold_generated = [open_row(page, f"{5 * i + 2:04d}") for i in range(n)]
        stats("case read from disk, cold (read + analyse + send + draw)", cold_disk)
        stats("next row, prepared ahead", ahead)
        stats("case opened before (cached)", cached)
        stats("generated phantom case, cold (generate + analyse + send + draw)", cold_generated)
        browser.close()


if __name__ == "__main__":
    main()
