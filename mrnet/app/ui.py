"""The Gradio app's wiring (the top-level app.py launches it): upload an exam, pick a sample, or browse a
labelled set case by case -> probabilities, and a slice viewer with CAM overlays drawn in the browser
(mrnet/app/web/viewer.js; the Cases view: mrnet/app/web/cases.js).
A case of a labelled set can be linked (the URL names the view) and flagged by a reviewer (SQLite).

Only wiring lives here; everything it calls is in the library below it. Settings come from the
environment (mrnet.core.settings; the README lists them), plus GRADIO_SERVER_NAME / GRADIO_SERVER_PORT
(default 127.0.0.1:7860).
"""
from __future__ import annotations

import asyncio
import atexit
import ctypes
import functools
import inspect
import shutil
import signal
import sys
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
from gradio.utils import get_upload_folder
from starlette.middleware import Middleware

from mrnet.app.access import ClientAddress, ThrottledLogin, parse_auth
from mrnet.app.browse import BUSY, CaseBrowser, Opened, table_payload, weights_name, with_scores
from mrnet.app.components import CasesView, SliceViewer, server_state
from mrnet.app.kept import GONE, KeptAnalyses, ZipFolder, remove
from mrnet.app.pixels import PixelStore
from mrnet.app.present import (
    flags_summary_markdown,
    html_text,
    markdown_text,
    predictions_markdown,
    viewer_payload,
    weights_markdown,
    with_comparison,
    write_report_zip,
)
from mrnet.app.view import View
from mrnet.core.analysis import Analysis, analyze
from mrnet.core.compute import compute_for, for_zero_gpu
from mrnet.core.config import DISCLAIMER
from mrnet.core.errors import MRNetError
from mrnet.core.hub import resolve, resolve_compare
from mrnet.core.pointing import judged_hit
from mrnet.core.settings import settings
from mrnet.inputs.load import load_exam, load_items
from mrnet.inputs.uploads import read_uploads
from mrnet.sets.cases import open_source
from mrnet.sets.flags import MAX_COMMENT, PAGE, VERDICTS, Flag, FlagStore, SaveLimit, skipped_sentence
from mrnet.sets.phantom_set import SCORES as PHANTOM_SCORES
from mrnet.sets.phantom_set import phantom_cases
from mrnet.sets.samples import BY_TITLE, SAMPLES, sample_file
from mrnet.sets.scores import weights_digest


def fewer_malloc_arenas(arenas: int = 1) -> None:
    """glibc gives each thread that allocates its own malloc arena; with Gradio's worker threads each holding
    freed exam buffers, the server's memory grew with the number of visitors. One arena keeps it bounded at
    no cost in throughput here (bench/load_bench.py); a no-op off glibc."""
    try:
        ctypes.CDLL("libc.so.6").mallopt(-8, arenas)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass


def release_memory() -> None:
    """Give freed memory back to the system after each analysis: a refused 1 GB input otherwise leaves the
    server's resident size at its peak (glibc keeps freed heap). A no-op off glibc."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


fewer_malloc_arenas()
try:
    settings()  # read once, here: a value that does not parse stops the app before it serves anything
except MRNetError as exc:
    raise SystemExit(f"error: {exc}") from None
# One limit for the whole app: Gradio's concurrency limit is per event, and the API, Analyze, a case opened
# and its prefetch are four events; each holds a slot while it reads and analyses an exam.
ANALYSIS_SLOTS = threading.BoundedSemaphore(settings().concurrency)
COMPUTE = compute_for()
RESOLVED = resolve(settings().weights)  # once, at start
WEIGHTS = RESOLVED.weights.to(COMPUTE.device)
# compare mode's second weights (MRNET_COMPARE): their score tables, and their maps of a case opened in compare mode
COMPARE = resolve_compare(settings().compare, WEIGHTS)
SECOND = COMPARE.weights.to(COMPUTE.device) if COMPARE is not None else None
CSS = (".notice {border-left: 4px solid #d97706; padding: 6px 12px; background: #fffbeb; color: #78350f;}"
       # the predictions table scrolls sideways on a phone instead of breaking words letter by letter
       "#predictions table, #flags-summary table {display: block; overflow-x: auto; max-width: 100%;}"
       "#predictions th, #predictions td, #flags-summary th, #flags-summary td "
       "{white-space: nowrap; word-break: normal; overflow-wrap: normal;}")
FLAGS = FlagStore(settings().flags)
SAVES = SaveLimit()
# the viewer's slices, fetched by the browser as files; one folder per app process inside Gradio's cache
PIXELS = PixelStore(Path(get_upload_folder()) / f"mrnet-viewer-{uuid.uuid4().hex}")
# each session's analysis, for its zip and flags, within one bound for all visitors
KEPT = KeptAnalyses(settings().kept_analyses_mb * 2**20)
# the zips, one per session, inside Gradio's cache (served from there, not copied), within one bound
ZIPS = ZipFolder(Path(get_upload_folder()) / f"mrnet-zips-{uuid.uuid4().hex}", settings().max_zips_mb * 2**20)
WEIGHTS_ID = WEIGHTS.source.get("commit") or weights_digest(WEIGHTS)  # what a flag says about the weights
SECOND_ID = (SECOND.source.get("commit") or weights_digest(SECOND)) if SECOND is not None else None
NAMES = {"a": weights_name(WEIGHTS), "b": weights_name(SECOND) if SECOND is not None else ""}
FLAG_COLUMNS = ["dataset", "case_id", "task", "plane", "slice", "method", "verdict", "comment", "weights", "created",
                "pointing"]


@for_zero_gpu
def analyze_on_device(exam, second: bool = False):
    """The model's work, the only part that needs the GPU (on a ZeroGPU Space: at most 60 s per call);
    `second`: with compare mode's second weights."""
    return analyze(exam, SECOND if second and SECOND is not None else WEIGHTS, COMPUTE)


def analyze_in_slot(read, second: bool = False):
    """Reading and analysing an exam (an upload, a sample, a labelled set's case opened or prefetched) hold one
    of the app's slots; the memory it took goes back after."""
    with ANALYSIS_SLOTS:
        try:
            return analyze_on_device(read(), second)
        finally:
            release_memory()


def labelled_sets() -> tuple[dict, str]:
    """MRNET_DATA's set (the default when given) and the phantom set; a set that cannot be opened is said,
    and the app runs on without it."""
    sets, problem = {}, ""
    if settings().data:
        try:
            cases = open_source(settings().data, settings().data_split)
            sets[cases.name] = with_scores(cases, settings().scores, WEIGHTS, name=weights_name(WEIGHTS))
            if COMPARE is not None:
                sets[cases.name].compare = with_scores(cases, settings().compare_scores, COMPARE.weights,
                                                       weights_name(COMPARE.weights), "set MRNET_COMPARE_SCORES=FILE")
        except MRNetError as exc:
            problem = f"⚠️ MRNET_DATA ({markdown_text(settings().data)}) cannot be browsed: {markdown_text(exc)}"
    sets["phantom"] = with_scores(phantom_cases(), PHANTOM_SCORES, WEIGHTS, name=weights_name(WEIGHTS))
    if COMPARE is not None:  # the phantom set's table of the second weights lives in their folder
        folder = Path(str(COMPARE.weights.source.get("folder", "")))
        folder = folder if folder.is_absolute() else PHANTOM_SCORES.parent.parent / folder
        sets["phantom"].compare = with_scores(phantom_cases(), folder / "scores-phantom.csv", COMPARE.weights,
                                              weights_name(COMPARE.weights),
                                              "save FILE as scores-phantom.csv in their weights folder")
    return sets, problem


SETS, SETS_PROBLEM = labelled_sets()
BROWSER = CaseBrowser(SETS, WEIGHTS, COMPUTE, store=PIXELS, analyze_fn=lambda exam: analyze_in_slot(lambda: exam),
                      second_fn=(lambda exam: analyze_in_slot(lambda: exam, second=True)) if SECOND is not None else None)
TABLES = {name: table_payload(item) for name, item in SETS.items()}  # the sets do not change while the app runs


@dataclass
class Session:
    """One visitor's screen: the key of its analysis among the kept ones (KEPT: what draws the zip and what a flag
    judges; the viewer draws in the browser), and the labelled set's case it is (None for an upload or a sample:
    those are never linked or flagged)."""
    analysis: str                         # KEPT's key
    case: tuple[str, str] | None = None   # (set name, case id)
    compared: bool = False                # the viewer may show the second weights' maps (compare mode)


def kept_analysis(state: Session | None) -> Analysis:
    analysis = KEPT.get(state.analysis) if state else None
    if analysis is None:
        raise gr.Error("Run an analysis first." if not state else GONE)
    return analysis


def released(fn):
    """An event handler after which freed memory goes back to the system, whether it returned, raised or (a
    generator) finished: glibc otherwise keeps the heap at its peak until the next analysis."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def generator(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            finally:
                release_memory()
        return generator
    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def coroutine(*args, **kwargs):
            try:
                return await fn(*args, **kwargs)
            finally:
                release_memory()
        return coroutine

    @functools.wraps(fn)
    def plain(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        finally:
            release_memory()
    return plain


def uploaded_exam(files):
    """Only regular files inside the upload cache are read: never a folder or another path that a raw API
    call names (it could hold other visitors' uploads)."""
    return load_items(read_uploads([f if isinstance(f, str) else f.name for f in files], get_upload_folder()))


def analyze_exam(read):
    """Bad input becomes a gr.Error with our one sentence; the app keeps serving."""
    try:
        return analyze_in_slot(read)
    except MRNetError as exc:
        raise gr.Error(html_text(exc)) from None


@released
def run_analysis(files, sample_title, progress=gr.Progress()):
    """Files or a sample -> the session's analysis, the predictions table, and the viewer's data and view."""
    progress(0.05, desc="Reading the exam")
    if not files and not sample_title:
        raise gr.Error("Upload an exam or pick a sample patient first.")
    progress(0.3, desc="Running MRNet on every slice")
    if files:
        analysis, truth = analyze_exam(lambda: uploaded_exam(files)), None
    else:
        sample = BY_TITLE[sample_title]
        analysis, truth = analyze_exam(lambda: load_exam([sample_file(sample)])), sample.truth or None
    return {session: Session(KEPT.put(analysis)), predictions: predictions_markdown(analysis, truth),
            viewer: gr.update(value=View.of(None, analysis).to_dict(), data=viewer_payload(analysis, store=PIXELS))}


def browse(dataset: str | None, case: str | None, compare: bool = False) -> Opened:
    try:
        return BROWSER.open(dataset, case, compare)
    except MRNetError as exc:
        raise gr.Error(html_text(exc)) from None


def shown(opened: Opened, view: dict, payload: dict | None = None) -> dict:
    """A labelled set's case on screen: the session, the table with its ground truth, the viewer (`payload`:
    the viewer's data in compare mode)."""
    return {session: Session(KEPT.put(opened.analysis), (opened.dataset, opened.case), compared=payload is not None),
            predictions: predictions_markdown(opened.analysis, opened.truth or None),
            viewer: gr.update(value=view, data=payload or opened.payload)}


def compared_payload(opened: Opened, wait: bool = True) -> dict:
    """A's viewer data with the second weights' maps of the same case: waited for, or (`wait=False`) marked as
    on their way when they are not ready; a failure is said in the viewer and A's maps stay usable."""
    try:
        second = BROWSER.second(opened.dataset, opened.case, wait=wait)
    except MRNetError as exc:
        return with_comparison(opened.payload, NAMES["a"], NAMES["b"], problem=str(exc))
    return with_comparison(opened.payload, NAMES["a"], NAMES["b"], second.payload if second else None)


# link loads build a case's outputs two at a time: forty at once would take both cores from everyone else
LINKS_SHOWN = asyncio.Semaphore(2)


async def awaited(future) -> Opened:
    """A case browser's preparation, awaited on the event loop: the page load that waits for it holds no thread
    and no concurrency slot that other visitors' page loads need."""
    try:
        return await asyncio.wrap_future(future)
    except asyncio.CancelledError:
        raise MRNetError(BUSY) from None


@released
def open_case(evt: gr.EventData):
    """A row of the Cases view was opened; the next row of its list is prepared meanwhile. In compare mode both
    weights analyse the case side by side; the viewer gets B's maps with A's when they are ready by then (they
    usually are), else right after."""
    asked = {key: getattr(evt, key, None) for key in ("dataset", "case", "task", "next", "compare")}
    compare = asked.get("compare") is True and SECOND is not None
    opened = browse(asked.get("dataset"), asked.get("case"), compare)
    view = View.of({"task": asked.get("task")}, opened.analysis).to_dict()
    if not compare:
        BROWSER.prefetch(asked.get("dataset"), asked.get("next"))
        yield shown(opened, view)
    else:
        # the next row after B's maps of this case: it would slow them down
        BROWSER.prefetch(asked.get("dataset"), asked.get("next"), compare=True,
                         after=BROWSER.second_future(opened.dataset, opened.case))
        payload = compared_payload(opened, wait=False)
        yield shown(opened, view, payload)
        if payload["compare"].get("pending"):  # only what the viewer adds to the analysis it shows (the same id)
            yield {viewer: gr.update(data={"id": payload["id"], "compare": compared_payload(opened)["compare"]})}
    yield nothing_more()


def nothing_more() -> dict:
    """A generator's closing message repeats its last update whole (Gradio 6, after that update went out as a
    diff), so an event that ended on the viewer's payload would send it twice: ending on an update that changes
    nothing sends a few bytes instead."""
    return {viewer: gr.update()}


@released
def choose_set(title):
    name = next((n for n, item in SETS.items() if isinstance(title, str) and item.cases.title == title), BROWSER.default)
    return gr.update(value=None, data=TABLES[name])


def flag_rows() -> tuple[list[list], str, str]:
    """The most recent flags for the table, what reviewers said per weights, task and method, and a note when
    they cannot be read (the page loads regardless)."""
    try:
        names = {WEIGHTS_ID: NAMES["a"], **({SECOND_ID: NAMES["b"]} if SECOND_ID else {})}
        summary, skipped = FLAGS.summary()
        return ([[getattr(f, c) for c in FLAG_COLUMNS] for f in FLAGS.list(limit=PAGE)],
                flags_summary_markdown(summary, names), f"⚠️ {skipped_sentence(skipped)}" if skipped else "")
    except MRNetError as exc:
        return [], "", f"⚠️ {markdown_text(exc)}"


@released
async def open_link(request: gr.Request):
    """A shared link (?case=...&task=...&method=...&plane=...&slice=..., &dataset=... when not the default
    set) opens that case in that view. Only configured sets' cases can be named. A coroutine with no concurrency
    limit: a link's analysis is awaited without holding a thread or a slot, so other visitors' page loads never
    wait behind it (the analyses themselves are bounded by the case browser's pool and its kept cases)."""
    params = dict(request.query_params)
    # the table comes with the page load: gr.HTML props given at construction do not reach js_on_load
    rows, said, problem = await asyncio.to_thread(flag_rows)
    compare = params.get("compare") == "1" and COMPARE is not None  # the link had compare mode on
    base = {flags_table: rows, flags_said: said, cases_view: gr.update(data=TABLES[BROWSER.default]),
            flag_note: problem}
    if "case" not in params:
        if compare:
            base[cases_view] = gr.update(data=TABLES[BROWSER.default], value={"dataset": BROWSER.default,
                                                                               "compare": True})
            base[tabs] = gr.Tabs(selected="cases")
        return base
    try:
        opened = await awaited(BROWSER.opening(params.get("dataset"), params.get("case"), compare))
    except MRNetError as exc:
        return {**base, link_note: gr.Markdown(f"⚠️ This link cannot be opened: {markdown_text(exc)}", visible=True)}
    if compare:  # a link made in compare mode shows both maps (a failure of B's is said in the viewer)
        try:
            await awaited(BROWSER.second_future(opened.dataset, opened.case))
        except MRNetError:
            pass
    async with LINKS_SHOWN:
        return await asyncio.to_thread(linked_case, params, opened, compare, base)


def linked_case(params: dict, opened: Opened, compare: bool, base: dict) -> dict:
    """open_link's outputs for a case that is ready (and, in compare mode, its second weights' maps)."""
    parsed, unread = View.from_link(params, opened.analysis)
    view = parsed.to_dict()
    note = (gr.Markdown(f"⚠️ Part of this link was not understood ({', '.join(unread)}); the case opens with its "
                        "defaults there.", visible=True) if unread else gr.Markdown(visible=False))
    payload = compared_payload(opened, wait=False) if compare else None  # ready: awaited by open_link
    return {**base, **shown(opened, view, payload), tabs: gr.Tabs(selected="cases"), link_note: note,
            dataset_choice: gr.Dropdown(value=SETS[opened.dataset].cases.title),
            cases_view: gr.update(value={"dataset": opened.dataset, "case": opened.case, "task": view["task"],
                                         "compare": compare}, data=TABLES[opened.dataset])}


@released
def save_flag(state: Session | None, view: dict | None, verdict: str | None, comment: str, request: gr.Request):
    """The view on screen (case, task, plane, slice, method) + the reviewer's verdict -> one row in SQLite."""
    if not state or not state.case:
        raise gr.Error("Flags are kept for cases of a labelled set (open one in the Cases tab); an upload or a "
                       "sample is never stored.")
    shown_analysis = kept_analysis(state)
    if not isinstance(verdict, str) or verdict not in VERDICTS:
        raise gr.Error("Choose whether the CAM is on the lesion, off it, or you are unsure.")
    shown_view = View.of(view, shown_analysis)
    task, plane, method = shown_view.task, shown_view.plane, shown_view.method
    index = shown_view.slices[plane]
    # the weights whose map was judged: the second's when the viewer shows them (compare mode)
    judged = "b" if state.compared and shown_view.maps == "b" else "a"
    if state.compared and shown_view.maps == "ab":
        raise gr.Error("The viewer shows A's and B's maps in one swipe: choose A or B to flag the map you judged.")
    comment = comment if isinstance(comment, str) else ""
    dataset, case = state.case
    try:
        SAVES.check(request.client.host if request.client else "")
        analysis = BROWSER.second(dataset, case).analysis if judged == "b" else shown_analysis
        pointing = judged_hit(analysis, BROWSER.masks(dataset, case), task, plane, index, method)
        flag = FLAGS.add(Flag(dataset, SETS[dataset].cases.split, case, task, plane, index, method, verdict,
                              comment, SECOND_ID if judged == "b" and SECOND_ID else WEIGHTS_ID, pointing=pointing))
    except MRNetError as exc:
        raise gr.Error(html_text(exc)) from None
    cut = f" The comment was cut to its first {MAX_COMMENT} characters." if flag.comment != comment.strip() else ""
    rows, said, problem = flag_rows()
    whose = f" of {NAMES[judged]}" if state.compared else ""
    return {flag_note: markdown_text(f"Saved: case {case}, {task}, {plane} slice {index}, {method}{whose} — "
                                     f"{VERDICTS[verdict]} ({flag.created}).{cut}") + (f"\n\n{problem}" if problem else ""),
            flags_table: rows, flags_said: said, flag_comment: ""}


@released
def on_download(state: Session | None, view: dict | None, request: gr.Request) -> str:
    """The zip (every overlay with the viewer's method and opacity), one per session: it replaces the session's
    previous one, and all of them together stay within MRNET_MAX_ZIPS_MB (the oldest go first)."""
    analysis = kept_analysis(state)
    shown_view = View.of(view, analysis)
    path = ZIPS.new_path(request.session_hash or "")
    try:
        write_report_zip(path, analysis, shown_view.method, shown_view.opacity)
    except OSError:
        remove(path)
        raise gr.Error("The zip could not be written: the server's disk is full. Try again later.") from None
    ZIPS.trim(keep=path)
    return str(path)


@released
def analyze_api(files: list) -> dict:
    """API: files -> the JSON report (same schema as `python -m mrnet predict`)."""
    if not files:
        raise gr.Error("No files were sent.")
    return analyze_exam(lambda: uploaded_exam(files)).report()


with gr.Blocks(title="MRNet knee-MRI explainer", delete_cache=(3600, 3600)) as demo:
    gr.Markdown("# MRNet knee-MRI explainer\nWhich regions of which slices drove each prediction — "
                "Class Activation Maps over the MRNet model (AlexNet per slice, max over slices).")
    gr.Markdown(f"⚠️ **{DISCLAIMER}**", elem_classes=["notice"], elem_id="notice")
    gr.Markdown(weights_markdown(WEIGHTS, RESOLVED.notice), elem_id="weights-info")
    session = server_state(None)
    with gr.Tabs(elem_id="tabs") as tabs:
        with gr.Tab("Exam", id="exam", elem_id="tab-exam"):
            with gr.Row():
                files = gr.File(label="Exam files (.npy per plane, .npz, .zip, NIfTI, DICOM)", file_count="multiple",
                                scale=3, elem_id="files")
                with gr.Column(scale=2):
                    sample = gr.Dropdown([s.title for s in SAMPLES], value=SAMPLES[1].title,
                                         label="…or a sample patient", elem_id="sample")
                    gr.Markdown("The real knee sample: " + next(s.note for s in SAMPLES if s.note))
                    run = gr.Button("Analyze", variant="primary", elem_id="analyze")
        with gr.Tab("Cases", id="cases", elem_id="tab-cases"):
            gr.Markdown("Browse a labelled set by outcome: pick a task and a threshold, click a cell of the confusion "
                        "matrix to list its cases, click a row to open it below (keys n / p: next / previous). "
                        + DISCLAIMER)
            if SETS_PROBLEM:
                gr.Markdown(SETS_PROBLEM, elem_classes=["notice"])
            dataset_choice = gr.Dropdown([item.cases.title for item in SETS.values()],
                                         value=SETS[BROWSER.default].cases.title, label="Labelled set",
                                         visible=len(SETS) > 1, elem_id="dataset")
            cases_view = CasesView(elem_id="cases")
    link_note = gr.Markdown(visible=False, elem_id="link-note")
    predictions = gr.Markdown(elem_id="predictions")
    viewer = SliceViewer(elem_id="viewer")
    with gr.Accordion("Review: is the CAM on the lesion? (cases of a labelled set; saved with the view on screen)",
                      open=True, elem_id="review"):
        with gr.Row():
            flag_verdict = gr.Radio([(title, key) for key, title in VERDICTS.items()], label="Verdict",
                                    elem_id="flag-verdict")
            flag_comment = gr.Textbox(label="Comment", lines=1, scale=2, elem_id="flag-comment")
            flag_button = gr.Button("Save flag", elem_id="flag-save")
        flag_note = gr.Markdown(elem_id="flag-note")
        flags_table = gr.Dataframe(headers=FLAG_COLUMNS, label="Flags", interactive=False, elem_id="flags")
        flags_said = gr.Markdown(elem_id="flags-summary")
    with gr.Row():
        zip_button = gr.Button("Prepare zip: every overlay PNG (the viewer's method and opacity) + JSON report",
                               elem_id="zip")
        zip_file = gr.File(label="Download", interactive=False, elem_id="zip-file")

    run.click(run_analysis, [files, sample], [session, predictions, viewer], api_visibility="private")
    cases_view.open(open_case, None, [session, predictions, viewer], api_visibility="private")
    dataset_choice.change(choose_set, [dataset_choice], [cases_view], api_visibility="private")
    flag_button.click(save_flag, [session, viewer, flag_verdict, flag_comment], [flag_note, flags_table, flags_said, flag_comment],
                      api_visibility="private")
    demo.load(open_link, None, [session, predictions, viewer, tabs, dataset_choice, cases_view, link_note, flags_table, flags_said,
                                flag_note],
              api_visibility="private", concurrency_limit=None)
    zip_button.click(on_download, [session, viewer], [zip_file], api_visibility="private")

    # API only: a named endpoint for gradio_client (see the README)
    api_files = gr.File(file_count="multiple", visible=False)
    api_report = gr.JSON(visible=False)
    api_button = gr.Button(visible=False)
    api_button.click(analyze_api, [api_files], [api_report], api_name="analyze")


def launch() -> None:
    # the viewer's slice files go with the app: at a normal exit, and at a plain kill (SIGTERM) too
    atexit.register(shutil.rmtree, PIXELS.folder, True)
    atexit.register(shutil.rmtree, ZIPS.folder, True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    config = settings()
    try:
        login = parse_auth(config.auth)
    except MRNetError as exc:  # fail closed: never serve without the login that was asked for
        raise SystemExit(f"error: {exc}") from None
    demo.queue(default_concurrency_limit=config.concurrency, max_size=64)
    demo.launch(
        share=config.share,  # fails soft offline: Gradio prints why and serves locally
        auth=ThrottledLogin(*login).check if login else None,
        allowed_paths=[str(PIXELS.folder)],  # only the viewer's slice files, named by random ids
        max_file_size=f"{config.max_upload_mb}mb",
        theme=gr.themes.Soft(), css=CSS, show_error=True, ssr_mode=False,
        app_kwargs={"middleware": [Middleware(ClientAddress)]},  # the login throttle's client address
    )
