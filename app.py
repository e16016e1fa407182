"""The Gradio app: upload an exam or pick a sample -> probabilities, CAM overlays, slice sliders.

Only wiring lives here; everything it calls is in the importable `mrnet` library. Settings come from the
environment (mrnet.settings; the README lists them), plus GRADIO_SERVER_NAME / GRADIO_SERVER_PORT
(default 127.0.0.1:7860).
"""
from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import gradio as gr  # noqa: E402
from gradio.utils import get_upload_folder  # noqa: E402

from mrnet import DISCLAIMER, Analysis, MRNetError, analyze, load_exam, load_items  # noqa: E402
from mrnet.compute import compute_for  # noqa: E402
from mrnet.config import PLANES, TASK_TITLES  # noqa: E402
from mrnet.explain import METHODS  # noqa: E402
from mrnet.hub import resolve  # noqa: E402
from mrnet.present import (  # noqa: E402
    contribution_frame,
    gallery_items,
    predictions_markdown,
    report_zip,
    slice_caption,
    weights_markdown,
)
from mrnet.render import Renderer  # noqa: E402
from mrnet.settings import settings  # noqa: E402
from mrnet.toolchain.samples import BY_TITLE, SAMPLES, sample_file  # noqa: E402  (phantom samples need the generator)
from mrnet.uploads import read_uploads  # noqa: E402

COMPUTE = compute_for()
RESOLVED = resolve(settings().weights)  # once, at start
WEIGHTS = RESOLVED.weights.to(COMPUTE.device)
TASKS = list(WEIGHTS.config.tasks)
CSS = ".notice {border-left: 4px solid #d97706; padding: 6px 12px; background: #fffbeb; color: #78350f;}"


@dataclass
class Session:
    """One visitor's analysis, what draws it, and where each gallery item points."""
    analysis: Analysis
    renderer: Renderer
    gallery: list[tuple[str, int]] = field(default_factory=list)   # (plane, slice) per gallery item


@dataclass
class PlaneView:
    column: gr.Column
    slider: gr.Slider
    raw: gr.Image
    overlay: gr.Image
    caption: gr.Markdown
    plot: gr.BarPlot


def uploaded_exam(files):
    """Only regular files inside the upload cache are read: never a folder or another path that a raw API
    call names (it could hold other visitors' uploads)."""
    return load_items(read_uploads([f if isinstance(f, str) else f.name for f in files], get_upload_folder()))


def analyze_exam(read):
    """Bad input becomes a gr.Error with our one sentence; the app keeps serving."""
    try:
        return analyze(read(), WEIGHTS, COMPUTE)
    except MRNetError as exc:
        raise gr.Error(str(exc)) from None


def run_analysis(files, sample_title, task, method, opacity, progress=gr.Progress()):
    """Files or a sample -> the session's analysis, and everything the page shows."""
    progress(0.05, desc="Reading the exam")
    if not files and not sample_title:
        raise gr.Error("Upload an exam or pick a sample patient first.")
    progress(0.3, desc="Running MRNet on every slice")
    if files:
        analysis, truth = analyze_exam(lambda: uploaded_exam(files)), None
    else:
        sample = BY_TITLE[sample_title]
        analysis, truth = analyze_exam(lambda: load_exam([sample_file(sample)])), sample.truth or None
    state = Session(analysis, Renderer(analysis))
    task = task if task in analysis.tasks else next(iter(analysis.tasks))
    return {session: state, predictions: predictions_markdown(analysis, truth),
            **render_all(state, task, method, opacity, move_sliders=True)}


def render_plane(state: Session, plane, task, method, opacity, index) -> dict:
    view = VIEWS[plane]
    return {view.raw: state.analysis.exam.volumes[plane][index],
            view.overlay: state.renderer.overlay(task, plane, index, method, opacity),
            view.caption: slice_caption(state.analysis, task, plane, index)}


def render_all(state: Session, task, method, opacity, move_sliders: bool) -> dict:
    """Every plane's view at its decisive slice (sliders move there when asked), and the gallery."""
    out = {}
    for plane, view in VIEWS.items():
        result = state.analysis.tasks[task].planes.get(plane)
        if result is None:
            out |= {view.column: gr.Column(visible=False), view.raw: None, view.overlay: None,
                    view.caption: f"{plane}: not in this exam", view.plot: None}
            continue
        index = result.top_slice
        if move_sliders:
            out[view.slider] = gr.Slider(minimum=0, maximum=len(result.contributions) - 1, value=index, step=1)
        out |= {view.column: gr.Column(visible=True), view.plot: contribution_frame(state.analysis, task, plane),
                **render_plane(state, plane, task, method, opacity, index)}
    out[gallery], state.gallery = gallery_items(state.renderer, task, method, opacity)
    return out


def on_slider(state: Session | None, task, method, opacity, index, plane) -> dict:
    if not state or plane not in state.analysis.tasks[task].planes:
        return {}
    n = len(state.analysis.exam.volumes[plane])
    return render_plane(state, plane, task, method, opacity, int(min(max(index, 0), n - 1)))


def on_view_change(state: Session | None, task, method, opacity, move_sliders: bool) -> dict:
    return render_all(state, task, method, opacity, move_sliders) if state else {}


def on_gallery_select(state: Session | None, evt: gr.SelectData) -> dict:
    """Clicking a gallery item moves that plane's slider there (its change event renders the slice)."""
    if not state or evt.index is None or evt.index >= len(state.gallery):
        return {}
    plane, index = state.gallery[evt.index]
    return {VIEWS[plane].slider: gr.Slider(value=index)}


def on_download(state: Session | None, method, opacity) -> str:
    """The zip goes into a folder of its own in Gradio's cache, which `delete_cache` empties after an hour."""
    if not state:
        raise gr.Error("Run an analysis first.")
    folder = Path(get_upload_folder()) / f"mrnet-{uuid.uuid4().hex}"
    folder.mkdir(parents=True)
    path = folder / "mrnet-overlays.zip"
    path.write_bytes(report_zip(state.renderer, method, opacity))
    return str(path)


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
    session = gr.State(None)
    with gr.Row():
        files = gr.File(label="Exam files (.npy per plane, .npz, .zip, DICOM)", file_count="multiple", scale=3,
                        elem_id="files")
        with gr.Column(scale=2):
            sample = gr.Dropdown([s.title for s in SAMPLES], value=SAMPLES[1].title, label="…or a sample patient",
                                 elem_id="sample")
            gr.Markdown("The real knee sample: " + next(s.note for s in SAMPLES if s.note))
            run = gr.Button("Analyze", variant="primary", elem_id="analyze")
    predictions = gr.Markdown(elem_id="predictions")
    with gr.Row():
        task = gr.Radio([(TASK_TITLES.get(t, t), t) for t in TASKS], value=TASKS[0], label="Task (which CAM)",
                        elem_id="task")
        method = gr.Radio([(m.title, name) for name, m in METHODS.items()], value="exact", label="Method",
                          elem_id="method")
        opacity = gr.Slider(0, 1, value=0.4, step=0.05, label="Overlay opacity", elem_id="opacity")
    VIEWS: dict[str, PlaneView] = {}
    with gr.Row():
        for plane in PLANES:
            with gr.Column(visible=False) as column:
                gr.Markdown(f"### {plane.capitalize()}")
                with gr.Row():
                    raw = gr.Image(label="slice", format="png", interactive=False, height=256)
                    over = gr.Image(label="CAM overlay", format="png", interactive=False, height=256)
                slider = gr.Slider(0, 1, value=0, step=1, label=f"{plane} slice", elem_id=f"slider-{plane}")
                caption = gr.Markdown(elem_id=f"caption-{plane}")
                plot = gr.BarPlot(x="slice", y="contribution", color="sign", height=180,
                                  label="Contribution of each slice to the logit", x_title="slice",
                                  y_title="contribution")
            VIEWS[plane] = PlaneView(column, slider, raw, over, caption, plot)
    gallery = gr.Gallery(label="Top slices for the selected task (click to jump)", columns=6, format="png",
                         elem_id="gallery", allow_preview=False, height=300)
    with gr.Row():
        zip_button = gr.Button("Prepare zip: every overlay PNG + JSON report", elem_id="zip")
        zip_file = gr.File(label="Download", interactive=False, elem_id="zip-file")

    view_outputs = [w for v in VIEWS.values() for w in (v.column, v.slider, v.raw, v.overlay, v.caption, v.plot)]
    view_outputs.append(gallery)
    view_inputs = [session, task, method, opacity]
    run.click(run_analysis, [files, sample, task, method, opacity], [session, predictions, *view_outputs],
              api_visibility="private")
    task.change(lambda s, t, m, o: on_view_change(s, t, m, o, move_sliders=True), view_inputs, view_outputs,
                api_visibility="private")
    for control in (method, opacity):
        control.change(lambda s, t, m, o: on_view_change(s, t, m, o, move_sliders=False), view_inputs, view_outputs,
                       api_visibility="private")
    for plane, view in VIEWS.items():
        view.slider.change(lambda s, t, m, o, i, p=plane: on_slider(s, t, m, o, i, p), [*view_inputs, view.slider],
                           [view.raw, view.overlay, view.caption], api_visibility="private", show_progress="hidden")
    gallery.select(on_gallery_select, [session], [v.slider for v in VIEWS.values()], api_visibility="private")
    zip_button.click(on_download, [session, method, opacity], [zip_file], api_visibility="private")

    # API only: a named endpoint for gradio_client (see the README)
    api_files = gr.File(file_count="multiple", visible=False)
    api_report = gr.JSON(visible=False)
    api_button = gr.Button(visible=False)
    api_button.click(analyze_api, [api_files], [api_report], api_name="analyze")


def launch() -> None:
    config = settings()
    demo.queue(default_concurrency_limit=config.concurrency, max_size=64)
    demo.launch(
        share=config.share,  # fails soft offline: Gradio prints why and serves locally
        auth=tuple(config.auth.split(":", 1)) if ":" in config.auth else None,
        max_file_size=f"{config.max_upload_mb}mb",
        theme=gr.themes.Soft(), css=CSS, show_error=True, ssr_mode=False,
    )


if __name__ == "__main__":
    launch()
