"""A shared link on an ordinary connection (a benchmark, not a test: it prints, never asserts).

    .venv/bin/python bench/network_bench.py [--repeats 3] [--profiles loopback ...] [--app-dir OTHER_CHECKOUT]

Debian chromium against the real app, with the network emulated through the DevTools protocol
(Network.emulateNetworkConditions) for loopback, 20 Mbit/s with 40 ms latency, and 5 Mbit/s with 80 ms. For
each: page ready (the Analyze button visible), Analyze -> first overlay on every plane (the viewer's
data-ready) and -> all slices (data-complete), the same for opening a case in the Cases tab and for an uploaded
3 x 32 phantom (the issue's exam; the upload is not counted), and the bytes the browser received for each
analysis. Then links opened in a new page (#35): a case of the phantom set (another each run, so it is analysed)
and that uploaded phantom shared by its visitor. Then the slice coding: the bytes of every plane's slices for the
3 x 32 phantom and the real knee in the coding the app sends (PNG's Average filter + deflate with zlib's Z_RLE
strategy, inflated natively by the browser's DecompressionStream, the filter undone in JS) beside the filter with
zlib 1 (sent before), zlib 1 and 9 alone, PNG and lossless WebP (OpenCV's encoders), each with its encoding time
in this process.
"""
import argparse
import json
import statistics
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "support"))  # the tests' helpers (server, browser)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from browser import launch  # noqa: E402
from server import running_app  # noqa: E402

PROFILES = {"loopback": None, "20 Mbit/s, 40 ms": (20e6, 40), "5 Mbit/s, 80 ms": (5e6, 80)}
PROFILES_ORDER = {name: i for i, name in enumerate(PROFILES)}  # each profile's case links name cases of their own
DONE = ("([old, key]) => { const r = document.querySelector('#viewer .mrv'); "
        "return r && r.dataset[key] === '1' && r.dataset.analysis !== old; }")


def timed_load(page, start, before):
    """Seconds from `start` to the first overlays and to the last slice, after an action that loads the viewer
    (a viewer without passes, before this one, is complete when it is ready)."""
    page.wait_for_function(DONE, arg=[before, "ready"], timeout=180_000, polling=10)
    first = time.perf_counter() - start
    if page.locator("#viewer .mrv").get_attribute("data-complete") is not None:
        page.wait_for_function(DONE, arg=[before, "complete"], timeout=180_000, polling=10)
    return first, time.perf_counter() - start


def throttled_page(browser, profile):
    """A new page on the emulated link, and the list its received bytes are counted into."""
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    received: list[int] = []
    # every chunk as it arrives: the event stream (Gradio's server-sent events) stays open, so it never finishes
    cdp.on("Network.dataReceived", lambda e: received.append(e["encodedDataLength"]))
    if profile:
        bits, latency = profile
        cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": latency,
                                                      "downloadThroughput": bits / 8, "uploadThroughput": bits / 8})
    return page, received


def timed_analyze(page, received):
    """Analyze clicked: seconds to the first overlays and to the last slice, and the bytes received meanwhile."""
    before, received[:] = page.locator("#viewer .mrv").get_attribute("data-analysis"), []
    t1 = time.perf_counter()
    page.locator("#analyze").click()
    first, complete = timed_load(page, t1, before)
    page.wait_for_timeout(300)
    return first, complete, sum(received)


def one_run(browser, url, profile):
    page, received = throttled_page(browser, profile)
    t0 = time.perf_counter()
    page.goto(url)
    page.locator("#analyze").wait_for(state="visible", timeout=180_000)
    ready = time.perf_counter() - t0
    page.wait_for_timeout(1500)  # the page's own requests settle
    analyze_first, analyze_all, analysis_bytes = timed_analyze(page, received)
    page.locator("button[role=tab]:has-text('Cases')").first.click()
    page.wait_for_selector("#cases .mrc[data-ready='1']", timeout=180_000)
    before = page.locator("#viewer .mrv").get_attribute("data-analysis")
    t2 = time.perf_counter()
    page.locator("#cases .mrc-table tr[data-case='0011']").click()
    case_first, case_all = timed_load(page, t2, before)
    page.close()
    return {"page_ready_s": ready, "analyze_first_overlay_s": analyze_first, "analyze_all_slices_s": analyze_all,
            "case_first_overlay_s": case_first, "case_all_slices_s": case_all, "analysis_bytes": analysis_bytes}


def upload_run(browser, url, profile, exam: Path):
    """Analyze -> first overlays and -> all slices for an uploaded exam (the issue's 3 x 32 phantom): the upload
    itself, which Gradio sends when the file is chosen, finishes before the click and is not counted."""
    page, received = throttled_page(browser, profile)
    page.goto(url)
    page.locator("#analyze").wait_for(state="visible", timeout=180_000)
    page.wait_for_timeout(1500)
    page.locator("#files input[type=file]").set_input_files(str(exam))
    # uploaded: the file's row links to the server's copy
    page.locator(f"#files a[data-testid=download-link][download='{exam.name}'][href*='/file=']").wait_for(timeout=180_000)
    page.wait_for_timeout(500)
    first, complete, analysis_bytes = timed_analyze(page, received)
    page.close()
    return {"upload_3x32_first_overlay_s": first, "upload_3x32_all_slices_s": complete,
            "upload_3x32_analysis_bytes": analysis_bytes}


def codings(volumes: dict) -> dict:
    """{coding: {"bytes", "encode_ms"}} for every plane's slices."""
    import cv2

    from mrnet.app.payload import average_filtered, packed_slices
    coders = {
        "Average filter + deflate Z_RLE (sent)": lambda v: len(packed_slices(v)),
        "Average filter + zlib 1 (sent before)": lambda v: len(zlib.compress(average_filtered(v).tobytes(), 1)),
        "zlib 1": lambda v: len(zlib.compress(v.tobytes(), 1)),
        "zlib 9": lambda v: len(zlib.compress(v.tobytes(), 9)),
        "PNG": lambda v: sum(len(cv2.imencode(".png", s, [cv2.IMWRITE_PNG_COMPRESSION, 9])[1]) for s in v),
        "WebP lossless": lambda v: sum(len(cv2.imencode(".webp", s, [cv2.IMWRITE_WEBP_QUALITY, 101])[1]) for s in v),
    }
    out: dict = {"median_predictor_residual_entropy_bits_per_px": round(residual_entropy(volumes), 2)}
    for name, coder in coders.items():
        started = time.perf_counter()
        size = sum(coder(volume) for volume in volumes.values())
        out[name] = {"bytes": size, "encode_ms": round(1000 * (time.perf_counter() - started), 1)}
    return out


def residual_entropy(volumes: dict) -> float:
    """Order-0 entropy (bits per pixel) of what LOCO-I's median predictor leaves: about what any coder that
    predicts from the left, upper and upper-left neighbours needs without modelling contexts."""
    counts = np.zeros(256)
    for volume in volumes.values():
        v = volume.astype(np.int16)
        a, b, c = (np.zeros_like(v) for _ in range(3))
        a[:, :, 1:], b[:, 1:, :], c[:, 1:, 1:] = v[:, :, :-1], v[:, :-1, :], v[:, :-1, :-1]
        high, low = np.maximum(a, b), np.minimum(a, b)
        predicted = np.where(c >= high, low, np.where(c <= low, high, a + b - c))
        counts += np.bincount(((v - predicted) & 255).ravel(), minlength=256)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


def payload_bytes(volumes: dict) -> dict:
    """What one analysis sends: the event's JSON and the slice files (the app's PixelStore)."""
    from mrnet.app.payload import viewer_payload
    from mrnet.app.pixels import PixelStore
    from mrnet.core.analysis import analyze
    from mrnet.core.exam import Exam
    from mrnet.core.hub import resolve
    with tempfile.TemporaryDirectory() as tmp:
        payload = viewer_payload(analyze(Exam(volumes=volumes), resolve("").weights), store=PixelStore(Path(tmp)))
        first = sum(len(p["passes"][0]["pixels"]) for p in payload["planes"].values())
        return {"event_json": len(json.dumps(payload)), "of_which_first_slices_base64": first,
                "slice_files": sum(f.stat().st_size for f in Path(tmp).glob("*.bin"))}


def shared_link(browser, url, exam: Path) -> str:
    """An upload shared the way a visitor shares it: its view link."""
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    page.goto(url)
    page.locator("#files input[type=file]").set_input_files(str(exam))
    page.locator(f"#files a[data-testid=download-link][download='{exam.name}'][href*='/file=']").wait_for(timeout=180_000)
    page.locator("#analyze").click()
    page.wait_for_function("() => document.querySelector('#viewer .mrv')?.dataset.complete === '1'", timeout=180_000)
    page.locator("#share").click()
    page.locator("#share-confirm").click()
    href = page.locator("#share-links a", has_text="View link").get_attribute("href", timeout=60_000)
    page.close()
    return url.rstrip("/") + "/" + href.lstrip("/")


def link_run(browser, url, profile, share: str, case: str):
    """A colleague opens a link in a new page: seconds to the first overlays and to the last slice, for a case of the
    phantom set (`case`: another each run, so that it is analysed as the shared exam is) and for a shared upload."""
    out = {}
    for name, link in (("case_link", f"{url.rstrip('/')}/?case={case}&task=acl"), ("shared_link", share)):
        page, _ = throttled_page(browser, profile)
        t0 = time.perf_counter()
        page.goto(link)
        first, complete = timed_load(page, t0, None)
        out |= {f"{name}_first_overlay_s": first, f"{name}_all_slices_s": complete}
        page.close()
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profiles", nargs="*", choices=list(PROFILES), default=list(PROFILES),
                        help="the links to emulate (all three by default; none: only the coding numbers)")
    parser.add_argument("--app-dir", type=Path, help="run the app of another checkout (e.g. a worktree of an older "
                        "commit) for a same-machine comparison; the coding and payload numbers stay this one's")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    from mrnet.inputs.load import load_exam
    from mrnet.sets.samples import BY_KEY, SAMPLES, sample_file
    phantom = {p: v[:32] for p, v in load_exam([sample_file(BY_KEY["phantom-acl"])]).volumes.items()}
    knee = load_exam([sample_file(BY_KEY["real-knee"])]).volumes
    default = load_exam([sample_file(SAMPLES[1])]).volumes
    out = {"cpu": cpu_name(), "sample": f"{SAMPLES[1].title} ({' x '.join(str(len(v)) for v in default.values())} slices)",
           "coding_bytes": {"phantom 3 x 32": codings(phantom), "real knee 1 x %d" % len(knee["sagittal"]): codings(knee)},
           "bytes_per_analysis": {"phantom 3 x 32": payload_bytes(phantom), "real knee": payload_bytes(knee)},
           "profiles": {}}
    if not args.profiles:
        print(json.dumps(out, indent=2))
        return
    app = {"cwd": args.app_dir.resolve(), "env_extra": {"PYTHONPATH": str(args.app_dir.resolve())}} if args.app_dir else {}
    out["app"] = str(args.app_dir or "this checkout")
    tmp = tempfile.mkdtemp()  # the app's flags and shares go here, not into the checkout's data/
    app["env_extra"] = app.get("env_extra", {}) | {"MRNET_FLAGS": f"{tmp}/flags.sqlite", "MRNET_SHARES": f"{tmp}/shares"}
    with running_app(**app, process=True) as (url, proc, log), sync_playwright() as pw:
        browser = launch(pw)
        one_run(browser, url, None)  # warm: samples generated, caches filled
        exam = Path(tmp) / "phantom-3x32.npz"
        np.savez(exam, **phantom)
        upload_run(browser, url, None, exam)
        share = shared_link(browser, url, exam)
        link_run(browser, url, None, share, "0020")
        for name in args.profiles:
            profile = PROFILES[name]
            runs = [one_run(browser, url, profile) | upload_run(browser, url, profile, exam)
                    | link_run(browser, url, profile, share, f"{30 + 10 * PROFILES_ORDER[name] + r:04d}")
                    for r in range(args.repeats)]
            out["profiles"][name] = {k: round(statistics.median(r[k] for r in runs), 3) for k in runs[0]}
        browser.close()
    print(json.dumps(out, indent=2))


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
