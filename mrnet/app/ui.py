"""The Gradio app's wiring (the top-level app.py launches it): upload an exam, pick a sample, or browse a
labelled set case by case -> probabilities, and a slice viewer with CAM overlays drawn in the browser
(mrnet/app/web/viewer.js; the Cases view: mrnet/app/web/cases.js).
A case of a labelled set can be linked (the URL names the view) and flagged by a reviewer (SQLite).

`build_demo(ctx)` builds the page over an app's state (`mrnet.app.context.create_context`), one builder per
tab; importing this module does no work. Only wiring lives here; everything it calls is in the library below
it. Settings come from the environment (mrnet.core.settings; docs/settings.md lists them), plus
GRADIO_SERVER_NAME / GRADIO_SERVER_PORT (default 127.0.0.1:7860).
"""
from __future__ import annotations

import asyncio
import atexit
import importlib.util
import signal
import sys
import time
import urllib.parse
import uuid
from dataclasses import dataclass, replace

import cv2
import gradio as gr
from gradio import route_utils
from gradio.data_classes import FileData
from gradio.utils import get_upload_folder
from starlette.middleware import Middleware

from mrnet.app.access import ClientAddress, Logins, ThrottledLogin, parse_auth, read_users
from mrnet.app.browse import Opened, awaited
from mrnet.app.components import CasesView, SliceViewer, server_state
from mrnet.app.context import Context, create_context
from mrnet.app.kept import GONE, remove
from mrnet.app.memory import fewer_malloc_arenas, released
from mrnet.app.payload import viewer_payload, with_comparison
from mrnet.app.present import (
    agreement_markdown,
    flags_summary_markdown,
    marks_markdown,
    predictions_markdown,
    weights_markdown,
)
from mrnet.app.text import html_text, markdown_text
from mrnet.app.view import Mark, View
from mrnet.core.analysis import Analysis
from mrnet.core.config import DEFAULT_METHOD, DISCLAIMER
from mrnet.core.errors import MRNetError
from mrnet.core.export import png_bytes, write_report_zip
from mrnet.core.pointing import judged_hit, mark_hit, mark_on_lesion, mark_zone
from mrnet.core.render import Renderer
from mrnet.core.settings import settings
from mrnet.core.text import quoted
from mrnet.inputs.load import load_items
from mrnet.inputs.uploads import read_uploads
from mrnet.sets.flags import MAX_COMMENT, PAGE, VERDICTS, Flag, skipped_sentence
from mrnet.sets.samples import BY_KEY, BY_TITLE, SAMPLES

CSS = (".notice {border-left: 4px solid #d97706; padding: 6px 12px; background: #fffbeb; color: #78350f;}"
       # the predictions table scrolls sideways on a phone instead of breaking words letter by letter
       "#predictions table, #flags-summary table {display: block; overflow-x: auto; max-width: 100%;}"
       "#predictions th, #predictions td, #flags-summary th, #flags-summary td "
       "{white-space: nowrap; word-break: normal; overflow-wrap: normal;}")
# Gradio's Soft theme with text dark enough for WCAG AA (4.5:1; axe-core in tests/test_accessibility.py): its
# labels, hints and primary buttons are indigo 500 or grey 400, from 2.5:1 to 4.47:1 against their backgrounds
def theme() -> gr.themes.Base:
    return gr.themes.Soft().set(
        block_label_text_color="*primary_700", block_title_text_color="*primary_700",
        body_text_color_subdued="*neutral_600", button_primary_background_fill="*primary_700",
        button_primary_background_fill_hover="*primary_800", button_primary_background_fill_dark="*primary_700",
        color_accent="*primary_700")
# The tables that scroll sideways on a phone (CSS above) take the keyboard's focus, so they can be scrolled without
# a pointer (WCAG's scrollable-region-focusable); Gradio's Markdown keeps no tabindex of its own.
FOCUSABLE_TABLES = """() => {
  const focusable = () => document.querySelectorAll("#predictions table, #flags-summary table").forEach(
    (table) => { if (!table.hasAttribute("tabindex")) table.setAttribute("tabindex", "0"); });
  new MutationObserver(focusable).observe(document.body, {childList: true, subtree: true});
  focusable();
}"""
FLAG_COLUMNS = ["dataset", "case_id", "task", "plane", "slice", "method", "verdict", "comment", "weights", "created",
                "pointing", "reviewer", "mark"]


def flag_cell(flag: Flag, column: str):
    """One cell of the flags table; `mark`: the lesion mark in exam pixels, and whether the map's maximum was on it."""
    if column != "mark":
        return getattr(flag, column)
    if flag.mark_x is None:
        return ""
    where = (f"point ({flag.mark_x}, {flag.mark_y})" if not (flag.mark_w or flag.mark_h) else
             f"box ({flag.mark_x}, {flag.mark_y}) {flag.mark_w}x{flag.mark_h}")
    return where + (" · map on it" if flag.mark_hit == 1 else " · map off it" if flag.mark_hit == 0 else "")


@dataclass
class Session:
    """One visitor's screen: the key of its analysis among the kept ones (Context.kept: what draws the zip and what
    a flag judges; the viewer draws in the browser), and the labelled set's case it is, or the sample or shared
    exam it is (flagged too, under a stable id), or the upload it is (which its visitor may share; an upload that
    is not shared is never flagged: it has no stable id, and its file name may identify a patient)."""
    analysis: str                         # the key of its analysis in Context.kept
    case: tuple[str, str] | None = None   # (set name, case id)
    compared: bool = False                # the viewer may show the second weights' maps (compare mode)
    upload: str = ""                      # an upload's viewer payload id: the exam its visitor may share
    other: tuple[str, str] | None = None  # ("sample", its key) or ("shared", the share's public id)


def flags_table(rows: list[list]) -> dict:
    """The recent flags, shown once there are some (an empty table on a phone is a scrolling box with nothing
    to focus)."""
    return gr.update(value=rows, visible=bool(rows))


def utc(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(seconds))


def upload_path(item) -> str:
    """A file as Gradio hands it over (a path, a FileData, an API's {"path": ...}, or through MCP the URL of a file
    uploaded to this app: .../gradio_api/file=PATH); anything else is a name that read_uploads refuses in one
    sentence. No other URL is fetched: the server never downloads what a caller names (no request forgery, no
    unbounded download); an assistant uploads the files first (gradio_api/upload, or Gradio's upload MCP server)."""
    if isinstance(item, dict):
        return str(item.get("path", ""))
    text = item if isinstance(item, str) else str(getattr(item, "path", "") or getattr(item, "name", ""))
    if text.startswith(("http://", "https://")):
        return urllib.parse.unquote(text.partition("gradio_api/file=")[2]) or text
    return text


class Page:
    """One built page: the app's state (`ctx`), the components that handlers name as outputs, and the handlers,
    each a method that calls the library and returns its outputs by name."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        # link loads build a case's outputs two at a time: forty at once would take both cores from everyone else
        # (one per page: an asyncio semaphore belongs to the event loop of the server that first waits on it)
        self.links_shown = asyncio.Semaphore(2)

    def kept_analysis(self, state: Session | None) -> Analysis:
        analysis = self.ctx.kept.get(state.analysis) if state else None
        if analysis is None:
            raise gr.Error("Run an analysis first." if not state else GONE)
        return analysis

    def uploaded_exam(self, files):
        """Only regular files inside the upload cache are read: never a folder or another path that a raw API
        call names (it could hold other visitors' uploads)."""
        return load_items(read_uploads([upload_path(f) for f in files], get_upload_folder()))

    def analyze_exam(self, read):
        """Bad input becomes a gr.Error with our one sentence; the app keeps serving."""
        try:
            return self.ctx.analyzer.read_and_analyze(read)
        except MRNetError as exc:
            raise gr.Error(html_text(exc)) from None

    @released
    def run_analysis(self, files, sample_title, progress=gr.Progress()):
        """Files or a sample -> the session's analysis, the predictions table, and the viewer's data and view."""
        progress(0.05, desc="Reading the exam")
        if not files and not sample_title:
            raise gr.Error("Upload an exam or pick a sample patient first.")
        progress(0.3, desc="Running MRNet on every slice")
        if files:
            analysis = self.analyze_exam(lambda: self.uploaded_exam(files))
            payload, truth = viewer_payload(analysis, store=self.ctx.pixels), None
            session = Session(self.ctx.kept.put(analysis), upload=payload["id"])
        else:
            sample = BY_TITLE.get(sample_title) if isinstance(sample_title, str) else None
            if sample is None:
                raise gr.Error("There is no such sample patient here; pick one from the list.")
            try:
                analysis, payload = self.ctx.samples.get(sample.key)
            except MRNetError as exc:
                raise gr.Error(html_text(exc)) from None
            # a new id: the viewer draws it as a new analysis (it refetches slices that failed before)
            payload, truth = {**payload, "id": uuid.uuid4().hex}, sample.truth or None
            session = Session(self.ctx.kept.put(analysis), other=("sample", sample.key))
        return {self.session: session, self.predictions: predictions_markdown(analysis, truth),
                self.viewer: gr.update(value=View.of(None, analysis).to_dict(), data=payload),
                **self.share_offer(bool(session.upload))}

    def share_offer(self, shareable: bool) -> dict:
        """The Share button, shown for an upload when sharing is on; the dialog and the last share's links go."""
        return {self.share_button: gr.update(visible=shareable and self.ctx.shares.enabled),
                self.share_panel: gr.update(visible=False), self.share_links: gr.Markdown(visible=False)}

    def browse(self, dataset: str | None, case: str | None, compare: bool = False) -> Opened:
        try:
            return self.ctx.browser.open(dataset, case, compare)
        except MRNetError as exc:
            raise gr.Error(html_text(exc)) from None

    def shown(self, opened: Opened, view: dict, payload: dict | None = None) -> dict:
        """A labelled set's case on screen: the session, the table with its ground truth, the viewer (`payload`:
        the viewer's data in compare mode)."""
        return {self.session: Session(self.ctx.kept.put(opened.analysis), (opened.dataset, opened.case), compared=payload is not None),
                self.predictions: predictions_markdown(opened.analysis, opened.truth or None),
                self.viewer: gr.update(value=view, data=payload or opened.payload), **self.share_offer(False)}

    def compared_payload(self, opened: Opened, wait: bool = True) -> dict:
        """A's viewer data with the second weights' maps of the same case: waited for, or (`wait=False`) marked as
        on their way when they are not ready; a failure is said in the viewer and A's maps stay usable."""
        try:
            second = self.ctx.browser.second(opened.dataset, opened.case, wait=wait)
        except MRNetError as exc:
            return with_comparison(opened.payload, self.ctx.names["a"], self.ctx.names["b"], problem=str(exc))
        return with_comparison(opened.payload, self.ctx.names["a"], self.ctx.names["b"], second.payload if second else None)

    @released
    def open_case(self, evt: gr.EventData):
        """A row of the Cases view was opened; the next row of its list is prepared meanwhile. In compare mode both
        weights analyse the case side by side; the viewer gets B's maps with A's when they are ready by then (they
        usually are), else right after."""
        data = getattr(evt, "_data", None)  # EventData's own lookup raises TypeError on data that is not an object
        if not isinstance(data, dict):
            raise gr.Error("A case is opened with an object naming its set and case; this event carried something else.")
        asked = {key: data.get(key) for key in ("dataset", "case", "task", "next", "compare")}
        compare = asked.get("compare") is True and self.ctx.second is not None
        opened = self.browse(asked.get("dataset"), asked.get("case"), compare)
        view = View.of({"task": asked.get("task")}, opened.analysis).to_dict()
        if not compare:
            self.ctx.browser.prefetch(asked.get("dataset"), asked.get("next"))
            yield self.shown(opened, view)
        else:
            # the next row after B's maps of this case: it would slow them down
            self.ctx.browser.prefetch(asked.get("dataset"), asked.get("next"), compare=True,
                             after=self.ctx.browser.second_future(opened.dataset, opened.case))
            payload = self.compared_payload(opened, wait=False)
            yield self.shown(opened, view, payload)
            if payload["compare"].get("pending"):  # only what the viewer adds to the analysis it shows (the same id)
                yield {self.viewer: gr.update(data={"id": payload["id"], "compare": self.compared_payload(opened)["compare"]})}
        yield self.nothing_more()

    def nothing_more(self) -> dict:
        """A generator's closing message repeats its last update whole (Gradio 6, after that update went out as a
        diff), so an event that ended on the viewer's payload would send it twice: ending on an update that changes
        nothing sends a few bytes instead."""
        return {self.viewer: gr.update()}

    @released
    def choose_set(self, title):
        name = next((n for n, item in self.ctx.sets.items() if isinstance(title, str) and item.cases.title == title),
                    self.ctx.browser.default)
        return gr.update(value=None, data=self.ctx.tables[name])

    def flag_rows(self) -> tuple[list[list], str, str]:
        """The most recent flags for the table, what reviewers said per weights, task and method, and a note when
        they cannot be read (the page loads regardless)."""
        try:
            names = {self.ctx.weights_id: self.ctx.names["a"]}
            if self.ctx.second_id:
                names[self.ctx.second_id] = self.ctx.names["b"]
            summary, skipped = self.ctx.flags.summary()
            said = (flags_summary_markdown(summary, names) + marks_markdown(self.ctx.flags.marks(), names)
                    + agreement_markdown(self.ctx.flags.agreement(), names))
            return ([[flag_cell(f, c) for c in FLAG_COLUMNS] for f in self.ctx.flags.list(limit=PAGE)],
                    said, f"⚠️ {skipped_sentence(skipped)}" if skipped else "")
        except MRNetError as exc:
            return [], "", f"⚠️ {markdown_text(exc)}"

    @released
    async def open_link(self, request: gr.Request):
        """A shared link (?case=...&task=...&method=...&plane=...&slice=..., &dataset=... when not the default
        set; or ?sample=KEY&...) opens that case or sample in that view. Only configured sets' cases can be named.
        A coroutine with no concurrency limit: a link's analysis is awaited without holding a thread or a slot, so
        other visitors' page loads never wait behind it (the analyses themselves are bounded by the case browser's
        pool and its kept cases)."""
        params = dict(request.query_params)
        # the table comes with the page load: gr.HTML props given at construction do not reach js_on_load
        rows, said, problem = await asyncio.to_thread(self.flag_rows)
        compare = params.get("compare") == "1" and self.ctx.compare is not None  # the link had compare mode on
        default = self.ctx.browser.default
        base = {self.flags_table: flags_table(rows), self.flags_said: said, self.cases_view: gr.update(data=self.ctx.tables[default]),
                self.flag_note: problem}
        if "sample" in params and "case" not in params:
            return {**base, **await asyncio.to_thread(self.linked_sample, params)}
        if "share" in params and "case" not in params:
            async with self.links_shown:
                return {**base, **await asyncio.to_thread(self.linked_share, params)}
        if "stop" in params and "case" not in params:  # the stop-sharing link asks first (a link preview never stops it)
            return {**base, self.stop_panel: gr.update(visible=True), self.stop_token: params["stop"]}
        if "case" not in params:
            if compare:
                base[self.cases_view] = gr.update(data=self.ctx.tables[default], value={"dataset": default, "compare": True})
                base[self.tabs] = gr.Tabs(selected="cases")
            return base
        try:
            opened = await awaited(self.ctx.browser.opening(params.get("dataset"), params.get("case"), compare))
        except MRNetError as exc:
            return {**base, self.link_note: gr.Markdown(f"⚠️ This link cannot be opened: {markdown_text(exc)}", visible=True)}
        if compare:  # a link made in compare mode shows both maps (a failure of B's is said in the viewer)
            try:
                await awaited(self.ctx.browser.second_future(opened.dataset, opened.case))
            except MRNetError:
                pass
        async with self.links_shown:
            return await asyncio.to_thread(self.linked_case, params, opened, compare, base)

    def linked_sample(self, params: dict) -> dict:
        """A sample's link (?sample=KEY&task=...&plane=...&slice=...): the sample analysed (from the sample cache)
        and shown in that view. Nothing is stored: the link names a sample every app has."""
        sample = BY_KEY.get(params["sample"]) if isinstance(params.get("sample"), str) else None
        if sample is None:
            return {self.link_note: gr.Markdown(f"⚠️ This link cannot be opened: there is no sample patient "
                                                f"{markdown_text(quoted(params.get('sample')))} here.", visible=True)}
        try:
            analysis, payload = self.ctx.samples.get(sample.key)
        except MRNetError as exc:
            return {self.link_note: gr.Markdown(f"⚠️ This link cannot be opened: {markdown_text(exc)}", visible=True)}
        parsed, unread = View.from_link(params, analysis)
        note = (gr.Markdown(f"⚠️ Part of this link was not understood ({', '.join(unread)}); the sample opens with "
                            "its defaults there.", visible=True) if unread else gr.Markdown(visible=False))
        return {self.session: Session(self.ctx.kept.put(analysis), other=("sample", sample.key)),
                self.sample: gr.Dropdown(value=sample.title),
                self.predictions: predictions_markdown(analysis, sample.truth or None), self.link_note: note,
                self.viewer: gr.update(value=parsed.to_dict(), data={**payload, "id": uuid.uuid4().hex})}

    def linked_share(self, params: dict) -> dict:
        """A shared upload's link (?share=TOKEN&task=...): its kept pixels analysed with the current weights and shown
        in that view; an unknown, stopped or expired token gets one and the same sentence."""
        try:
            shared = self.ctx.shares.open(params.get("share"))
            analysis = self.ctx.analyzer.first(shared.exam)
        except MRNetError as exc:
            return {self.link_note: gr.Markdown(f"⚠️ {markdown_text(exc)}", visible=True)}
        parsed, unread = View.from_link(params, analysis)
        notes = [f"A shared exam ({shared.public}): kept on this server until {utc(shared.expires)}, unless its sharer "
                 "stops sharing it first."]
        if shared.weights != self.ctx.weights_id:
            notes.append("⚠️ The weights changed since this exam was shared: these are the current weights' results.")
        if unread:
            notes.append(f"⚠️ Part of this link was not understood ({', '.join(unread)}); the exam opens with its "
                         "defaults there.")
        payload = viewer_payload(analysis, store=self.ctx.pixels, link={"share": params["share"]})
        return {self.session: Session(self.ctx.kept.put(analysis), other=("shared", shared.public)),
                self.link_note: gr.Markdown(" ".join(notes), visible=True),
                self.predictions: predictions_markdown(analysis, None),
                self.viewer: gr.update(value=parsed.to_dict(), data=payload)}

    def ask_to_share(self) -> dict:
        return {self.share_panel: gr.update(visible=True)}

    def not_shared(self) -> dict:
        return {self.share_panel: gr.update(visible=False)}

    @released
    def share_exam(self, state: Session | None, request: gr.Request) -> dict:
        """The visitor confirmed: their upload's pixels are kept under a new token, and its two links are shown once."""
        if not state or not state.upload:
            raise gr.Error("Only an exam you uploaded is shared here; a case or a sample has a link of its own.")
        analysis = self.kept_analysis(state)
        try:
            share = self.ctx.shares.create(analysis.exam, self.ctx.weights_id, request.client.host if request.client else "")
        except MRNetError as exc:
            raise gr.Error(html_text(exc)) from None
        links = (f"**Shared until {utc(share.expires)}.** [View link](?share={share.token}): anyone with it can open "
                 f"this exam{self.login_words()}. [Stop-sharing link](?stop={share.stop_token}): it deletes the shared "
                 "exam at once. Keep it now: it is shown only here, once.")
        return {self.share_links: gr.Markdown(links, visible=True), self.share_panel: gr.update(visible=False),
                self.share_button: gr.update(visible=False),
                self.viewer: gr.update(data={"id": state.upload, "link": {"share": share.token}}),
                self.session: replace(state, other=("shared", share.public))}  # shared: its sharer may flag it too

    @released
    def stop_sharing(self, token) -> dict:
        try:
            public = self.ctx.shares.stop(token)
        except MRNetError as exc:
            return {self.stop_note: gr.Markdown(f"⚠️ {markdown_text(exc)}", visible=True),
                    self.stop_button: gr.update(visible=False)}
        return {self.stop_note: gr.Markdown(f"Sharing stopped: the shared exam ({public}) is deleted from this server, "
                                            "and its view link no longer opens.", visible=True),
                self.stop_button: gr.update(visible=False)}

    def login_words(self) -> str:
        return " after logging in to this app" if self.ctx.settings.auth or self.ctx.settings.users else ""

    def share_words(self) -> str:
        """What Share keeps, where, for how long and who can open it: said before anything is kept."""
        days = self.ctx.settings.share_days
        return (f"**Share this exam?** This server then keeps its pixels (the planes as the app read them: no file "
                f"names, no DICOM header text) for {days} day{'s' if days != 1 else ''}, or until you stop sharing. "
                f"Anyone with the view link can open it{self.login_words()} and see its results. You get a view link "
                "and a stop-sharing link; the stop-sharing link is shown only once.")

    def linked_case(self, params: dict, opened: Opened, compare: bool, base: dict) -> dict:
        """open_link's outputs for a case that is ready (and, in compare mode, its second weights' maps)."""
        parsed, unread = View.from_link(params, opened.analysis)
        view = parsed.to_dict()
        note = (gr.Markdown(f"⚠️ Part of this link was not understood ({', '.join(unread)}); the case opens with its "
                            "defaults there.", visible=True) if unread else gr.Markdown(visible=False))
        payload = self.compared_payload(opened, wait=False) if compare else None  # ready: awaited by open_link
        return {**base, **self.shown(opened, view, payload), self.tabs: gr.Tabs(selected="cases"), self.link_note: note,
                self.dataset_choice: gr.Dropdown(value=self.ctx.sets[opened.dataset].cases.title),
                self.cases_view: gr.update(value={"dataset": opened.dataset, "case": opened.case, "task": view["task"],
                                             "compare": compare}, data=self.ctx.tables[opened.dataset])}

    @released
    def save_flag(self, state: Session | None, view: dict | None, verdict: str | None, comment: str, request: gr.Request):
        """The view on screen (case, task, plane, slice, method) + the reviewer's verdict -> one row in SQLite. A
        sample is flagged under the set name and split "sample" and its key, a shared exam under "shared" and its
        public id (never a file name); they have no lesion masks here, so no pointing game but a mark's."""
        if not state or not (state.case or state.other):
            raise gr.Error("Flags are kept for cases of a labelled set, samples and shared exams; share an upload "
                           "first to flag it (an upload's file name may identify a patient).")
        shown_analysis = self.kept_analysis(state)
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
        in_set = state.case is not None
        dataset, case = state.case or state.other or ("", "")
        split = self.ctx.sets[dataset].cases.split if in_set else dataset
        try:
            mark = Mark.parse(view.get("mark") if isinstance(view, dict) else None, shown_analysis)
            if mark and (mark.plane, mark.slice) != (plane, index):
                raise MRNetError(f"The lesion mark is on {mark.plane} slice {mark.slice}, not on the slice judged "
                                 f"({plane} slice {index}): go back to it, or remove the mark.")
            self.ctx.saves.check(request.client.host if request.client else "")
            analysis = self.ctx.browser.second(dataset, case).analysis if judged == "b" else shown_analysis
            masks = self.case_masks(dataset, case) if in_set else {}  # read once: a phantom's are made again (~0.5 s)
            pointing, unscored = self.pointing(analysis, masks, task, plane, index, method) if in_set else (None, "")
            marked = self.marked(analysis, masks or {}, task, method, mark) if mark else {}
            weights = self.ctx.second_id if judged == "b" and self.ctx.second_id else self.ctx.weights_id
            flag = self.ctx.flags.add(Flag(dataset, split, case, task, plane, index, method,
                                           verdict, comment, weights, pointing=pointing,
                                           reviewer=request.username or "anonymous", palette=shown_view.palette,
                                           **marked))
        except MRNetError as exc:
            raise gr.Error(html_text(exc)) from None
        cut = f" The comment was cut to its first {MAX_COMMENT} characters." if flag.comment != comment.strip() else ""
        cut += unscored
        if mark:
            cut += (f" Lesion mark: {'a point' if not (mark.w or mark.h) else 'a box'} at ({mark.x}, {mark.y}); the map's "
                    f"maximum is {'on' if flag.mark_hit else 'not on'} it.")
        rows, said, problem = self.flag_rows()
        whose = f" of {self.ctx.names[judged]}" if state.compared else ""
        what = {"sample": "sample", "shared": "shared exam"}.get(split, "case") if not in_set else "case"
        return {self.flag_note: markdown_text(f"Saved: {what} {case}, {task}, {plane} slice {index}, {method}{whose} — "
                                         f"{VERDICTS[verdict]} ({flag.created}).{cut}") + (f"\n\n{problem}" if problem else ""),
                self.flags_table: flags_table(rows), self.flags_said: said, self.flag_comment: ""}

    def case_masks(self, dataset: str, case: str) -> dict | None:
        """A labelled set's case's lesion masks by plane ({} for a set without masks), or None when they cannot be
        read."""
        try:
            return self.ctx.browser.masks(dataset, case)
        except (MRNetError, ValueError, TypeError):
            return None

    @staticmethod
    def pointing(analysis: Analysis, masks: dict | None, task: str, plane: str, index: int,
                 method: str) -> tuple[int | None, str]:
        """The pointing game of the judged map on the case's lesion mask, and a sentence when it cannot be scored
        (the flag is saved regardless, with NULL)."""
        unscored = " Its pointing game could not be scored: the case's lesion mask does not fit its slices."
        if masks is None:
            return None, unscored
        try:
            return judged_hit(analysis, masks, task, plane, index, method), ""
        except (MRNetError, ValueError, TypeError, IndexError, cv2.error):
            return None, unscored

    @staticmethod
    def marked(analysis: Analysis, masks: dict, task: str, method: str, mark: Mark) -> dict:
        """A flag's lesion-mark columns: the mark, the pointing game against it, and where `masks` (by plane) has
        the marked plane's, whether the mark touches the lesion."""
        volume = analysis.exam.volumes[mark.plane]
        zone = mark_zone(volume.shape[1:], mark.x, mark.y, mark.w, mark.h)
        columns = {"mark_x": mark.x, "mark_y": mark.y, "mark_w": mark.w, "mark_h": mark.h,
                   "mark_hit": mark_hit(analysis.tasks[task].planes[mark.plane].maps[method][mark.slice], zone)}
        mask = masks.get(mark.plane)
        try:
            if mask is not None and mask.shape == volume.shape:
                columns["mark_on_lesion"] = mark_on_lesion(mask[mark.slice], task, zone)
        except (ValueError, TypeError, IndexError, cv2.error):
            pass  # a mask that does not fit: the mark is kept, its accuracy unknown
        return columns

    @released
    def on_download(self, state: Session | None, view: dict | None, request: gr.Request) -> dict:
        """The zip (every overlay with the viewer's method and opacity), one per session: it replaces the session's
        previous one, and all of them together stay within MRNET_MAX_ZIPS_MB (the oldest go first)."""
        analysis = self.kept_analysis(state)
        shown_view = View.of(view, analysis)
        path = self.ctx.zips.new_path(request.session_hash or "")
        try:
            with self.ctx.analyzer.slots:  # drawing every overlay is as heavy as an analysis: it takes one of their slots
                write_report_zip(path, analysis, shown_view.method, shown_view.opacity, shown_view.palette)
        except OSError:
            remove(path)
            raise gr.Error("The zip could not be written: the server's disk is full. Try again later.") from None
        self.ctx.zips.trim(keep=path)
        return gr.update(value=str(path), visible=True)

    @released
    def analyze_sample(self, sample: str, request: gr.Request) -> dict:
        """One of the app's sample patients -> its JSON report, the same as `analyze` gives for the sample's file.

        Args:
            sample: a sample's key: phantom-normal, phantom-acl, phantom-meniscus, phantom-acl-meniscus, phantom-oedema, real-knee

        Returns:
            The report: per task (abnormal, acl, meniscus) the fused probability and each plane's probability and
            decisive slices, the exam's notes and warnings, the weights (trained on synthetic phantoms), the
            disclaimer (a research demo, not for diagnosis), and `overlays`: per task, a link to the decisive
            slice's CAM overlay as a PNG (kept an hour).
        """
        found = BY_KEY.get(sample) if isinstance(sample, str) else None
        if found is None:
            raise gr.Error(f"There is no sample {quoted(sample)}; the samples are {', '.join(BY_KEY)}.")
        try:
            analysis = self.ctx.samples.get(found.key)[0]
        except MRNetError as exc:
            raise gr.Error(html_text(exc)) from None
        return analysis.report() | {"overlays": self.overlay_links(analysis, request)}

    def analyze(self, files: list[FileData], request: gr.Request) -> dict:
        """A knee MRI exam's files -> the JSON report, the same as `python -m mrnet predict` writes.

        Args:
            files: the exam as URLs: one .npy per plane (axial.npy, coronal.npy, sagittal.npy), an .npz, a .zip, NIfTI or DICOM

        Returns:
            The report: per task (abnormal, acl, meniscus) the fused probability and each plane's probability and
            decisive slices, the exam's notes and warnings, the weights (trained on synthetic phantoms), the
            disclaimer (a research demo, not for diagnosis), and `overlays`: per task, a link to the decisive
            slice's CAM overlay as a PNG (kept an hour).
        """
        if not isinstance(files, list) or not files:
            raise gr.Error("Send the exam's files: a list of one or more files.")
        analysis = self.analyze_exam(lambda: self.uploaded_exam(files))
        return analysis.report() | {"overlays": self.overlay_links(analysis, request)}

    def overlay_links(self, analysis: Analysis, request: gr.Request | None) -> dict:
        """Per task: the decisive plane's top slice drawn with the default method, opacity and palette, as a PNG the
        app serves for an hour under a random name; its URL absolute where the request says the app's address."""
        renderer = Renderer(analysis, cache=False)
        try:  # the app's public address: the request's URL without its route (/gradio_api/queue/join, /gradio_api/mcp/)
            path = request.request.url.path
            route = path[path.find("/gradio_api"):] if "/gradio_api" in path else ""
            root = route_utils.get_root_url(request.request, route, None) + "/"
        except (AttributeError, TypeError, ValueError):
            root = ""  # a relative link: the app's own address before it
        links = {}
        for task, result in analysis.tasks.items():
            plane, index = result.decisive_plane, result.planes[result.decisive_plane].top_slice
            png = png_bytes(renderer.overlay(task, plane, index, DEFAULT_METHOD))
            links[task] = {"plane": plane, "slice": index, "method": DEFAULT_METHOD,
                           "url": root + self.ctx.pixels(png, ".png")}
        return links


def build_exam_tab(page: Page) -> None:
    with gr.Tab("Exam", id="exam", elem_id="tab-exam"):
        with gr.Row():
            page.files = gr.File(label="Exam files (.npy per plane, .npz, .zip, NIfTI, DICOM)", file_count="multiple",
                                 scale=3, elem_id="files")
            with gr.Column(scale=2):
                page.sample = gr.Dropdown([s.title for s in SAMPLES], value=SAMPLES[1].title,
                                          label="…or a sample patient", elem_id="sample")
                gr.Markdown("The real knee sample: " + next(s.note for s in SAMPLES if s.note))
                page.run = gr.Button("Analyze", variant="primary", elem_id="analyze")


def build_cases_tab(page: Page) -> None:
    ctx = page.ctx
    with gr.Tab("Cases", id="cases", elem_id="tab-cases"):
        gr.Markdown("Browse a labelled set by outcome: pick a task and a threshold, click a cell of the confusion "
                    "matrix to list its cases, click a row to open it below (keys n / p: next / previous). "
                    + DISCLAIMER)
        if ctx.sets_problem:
            gr.Markdown(ctx.sets_problem, elem_classes=["notice"])
        page.dataset_choice = gr.Dropdown([item.cases.title for item in ctx.sets.values()],
                                          value=ctx.sets[ctx.browser.default].cases.title, label="Labelled set",
                                          visible=len(ctx.sets) > 1, elem_id="dataset")
        page.cases_view = CasesView(elem_id="cases")


def build_share(page: Page) -> None:
    """An upload's Share button and its dialog (nothing is kept before Share is pressed), then its links."""
    page.share_button = gr.Button("Share this exam…", visible=False, elem_id="share")
    with gr.Group(visible=False, elem_id="share-panel") as page.share_panel:
        gr.Markdown(page.share_words())
        with gr.Row():
            page.share_confirm = gr.Button("Share", variant="primary", elem_id="share-confirm")
            page.share_cancel = gr.Button("Cancel", elem_id="share-cancel")
    page.share_links = gr.Markdown(visible=False, elem_id="share-links")


def build_stop_panel(page: Page) -> None:
    """What a stop-sharing link opens, at the top of the page: it asks first, then deletes."""
    page.stop_token = server_state("")
    with gr.Group(visible=False, elem_id="stop-panel") as page.stop_panel:
        gr.Markdown("**Stop sharing this exam?** Its pixels are deleted from this server at once, and its view link "
                    "stops working for everyone.")
        page.stop_button = gr.Button("Stop sharing", variant="stop", elem_id="stop-sharing")
        page.stop_note = gr.Markdown(visible=False, elem_id="stop-note")


def build_review(page: Page) -> None:
    with gr.Accordion("Review: is the CAM on the lesion? (cases of a labelled set, samples and shared exams; saved "
                      "with the view on screen)",
                      open=True, elem_id="review"):
        with gr.Row():
            page.flag_verdict = gr.Radio([(title, key) for key, title in VERDICTS.items()], label="Verdict",
                                         elem_id="flag-verdict")
            page.flag_comment = gr.Textbox(label="Comment", lines=1, scale=2, elem_id="flag-comment")
            page.flag_button = gr.Button("Save flag", elem_id="flag-save")
        page.flag_note = gr.Markdown(elem_id="flag-note")
        page.flags_table = gr.Dataframe(headers=FLAG_COLUMNS, label="Flags", interactive=False, visible=False,
                                        elem_id="flags")
        page.flags_said = gr.Markdown(elem_id="flags-summary")


def wire(page: Page, demo: gr.Blocks) -> None:
    p = page
    offer = [p.share_button, p.share_panel, p.share_links]
    p.run.click(p.run_analysis, [p.files, p.sample], [p.session, p.predictions, p.viewer, *offer],
                api_visibility="private")
    p.cases_view.open(p.open_case, None, [p.session, p.predictions, p.viewer, *offer], api_visibility="private")
    p.share_button.click(p.ask_to_share, None, [p.share_panel], api_visibility="private")
    p.share_cancel.click(p.not_shared, None, [p.share_panel], api_visibility="private")
    p.share_confirm.click(p.share_exam, [p.session], [*offer, p.viewer, p.session], api_visibility="private")
    p.stop_button.click(p.stop_sharing, [p.stop_token], [p.stop_note, p.stop_button], api_visibility="private")
    p.dataset_choice.change(p.choose_set, [p.dataset_choice], [p.cases_view], api_visibility="private")
    p.flag_button.click(p.save_flag, [p.session, p.viewer, p.flag_verdict, p.flag_comment],
                        [p.flag_note, p.flags_table, p.flags_said, p.flag_comment], api_visibility="private")
    demo.load(p.open_link, None, [p.session, p.predictions, p.viewer, p.tabs, p.dataset_choice, p.cases_view,
                                  p.link_note, p.flags_table, p.flags_said, p.flag_note, p.sample, *offer,
                                  p.stop_panel, p.stop_token],
              api_visibility="private", concurrency_limit=None)
    p.zip_button.click(p.on_download, [p.session, p.viewer], [p.zip_file], api_visibility="private")
    # API only: named, typed endpoints for gradio_client and, with MRNET_MCP=1, an assistant's tools
    gr.api(p.analyze, api_name="analyze")
    gr.api(p.analyze_sample, api_name="analyze_sample")


def build_demo(ctx: Context) -> gr.Blocks:
    """The page over an app's state: the header, the Exam and Cases tabs, the viewer, the review, the zip."""
    page = Page(ctx)
    with gr.Blocks(title="MRNet knee-MRI explainer", delete_cache=(3600, 3600)) as demo:
        gr.Markdown("# MRNet knee-MRI explainer\nWhich regions of which slices drove each prediction — "
                    "Class Activation Maps over the MRNet model (AlexNet per slice, max over slices).")
        gr.Markdown(f"⚠️ **{DISCLAIMER}**", elem_classes=["notice"], elem_id="notice")
        gr.Markdown(weights_markdown(ctx.weights, ctx.resolved.notice), elem_id="weights-info")
        page.session = server_state(None)
        with gr.Tabs(elem_id="tabs") as page.tabs:
            build_exam_tab(page)
            build_cases_tab(page)
        page.link_note = gr.Markdown(visible=False, elem_id="link-note")
        build_stop_panel(page)
        page.predictions = gr.Markdown(elem_id="predictions")
        page.viewer = SliceViewer(elem_id="viewer")
        build_share(page)
        build_review(page)
        with gr.Row():
            page.zip_button = gr.Button("Prepare zip: every overlay PNG (the viewer's method and opacity) + JSON report",
                                        elem_id="zip")
            # shown once there is a zip (an empty File is an unlabelled box to a screen reader)
            page.zip_file = gr.File(label="Download", interactive=False, visible=False, elem_id="zip-file")
        wire(page, demo)
    demo.page = page  # type: ignore[attr-defined]  # tests reach the state through it
    return demo


def login_check(config) -> Logins | None:
    """Who may log in (MRNET_USERS and MRNET_AUTH together), or None for an app without a login."""
    pair, users = parse_auth(config.auth), read_users(config.users) if config.users else None
    return Logins(users, pair) if pair or users else None


def serve(demo: gr.Blocks, ctx: Context, **launch_kwargs) -> None:
    """Queue and launch a built demo with the app's limits, login and files (`launch_kwargs`: e.g.
    prevent_thread_lock=True for a test that serves it in-process)."""
    config = ctx.settings
    try:
        logins = login_check(config)
    except MRNetError as exc:  # fail closed: never serve without the login that was asked for
        raise SystemExit(f"error: {exc}") from None
    demo.queue(default_concurrency_limit=config.concurrency, max_size=64)
    demo.launch(
        share=config.share,  # fails soft offline: Gradio prints why and serves locally
        auth=ThrottledLogin(logins=logins).check if logins else None,
        allowed_paths=[str(ctx.pixels.folder)],  # only the viewer's slice files, named by random ids
        max_file_size=f"{config.max_upload_mb}mb",
        theme=theme(), css=CSS, js=FOCUSABLE_TABLES, show_error=True, ssr_mode=False, footer_links=["api"],
        app_kwargs={"middleware": [Middleware(ClientAddress)]},  # the login throttle's client address
        mcp_server=config.mcp,  # MRNET_MCP=1: the API's endpoints as tools (docs/deploy.md: files travel as URLs)
        **launch_kwargs,
    )


def launch() -> None:
    """`python app.py`: settings from the environment (a value that does not parse stops the app before it
    serves anything), the app's state, the page, served until stopped."""
    fewer_malloc_arenas()
    try:
        config = settings()
        login_check(config)
        if config.mcp and importlib.util.find_spec("mcp") is None:
            raise MRNetError("MRNET_MCP=1 needs the mcp package (pip install mcp); the app did not start.")
    except MRNetError as exc:
        raise SystemExit(f"error: {exc}") from None
    ctx = create_context(config)
    # the viewer's slice files and the zips go with the app: at a normal exit, and at a plain kill (SIGTERM) too
    atexit.register(ctx.close)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    demo = build_demo(ctx)
    serve(demo, ctx, prevent_thread_lock=True)
    ctx.samples.warm(SAMPLES[1].key)  # the default sample, made once the page is served (start-up never waits)
    demo.block_thread()
