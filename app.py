"""The Gradio app: upload an exam or pick a sample -> probabilities, CAM overlays, slice sliders.

Only wiring lives here; everything it calls is in the importable `mrnet` library.
Environment: MRNET_WEIGHTS (folder or owner/name[@revision]), MRNET_SHARE=1, MRNET_AUTH=user:pass,
GRADIO_SERVER_NAME / GRADIO_SERVER_PORT (default 127.0.0.1:7860).
"""
from __future__ import annotations

import os
import tempfile
import time
import uuid
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import gradio as gr  # noqa: E402

from gradio.utils import get_upload_folder  # noqa: E402

from mrnet import DISCLAIMER, MRNetError, analyze, load_exam, load_items  # noqa: E402
from mrnet.config import PLANES, TASK_TITLES  # noqa: E402
from mrnet.hub import resolve  # noqa: E402
from mrnet.present import (contribution_frame, gallery_items, predictions_markdown, report_zip,  # noqa: E402
                           slice_caption)
from mrnet.samples import BY_TITLE, SAMPLES, sample_file  # noqa: E402
from mrnet.uploads import read_uploads  # noqa: E402

RESOLVED = resolve(os.environ.get("MRNET_WEIGHTS", ""))  # once, at start
WEIGHTS = RESOLVED.weights
TASKS = list(WEIGHTS.config.tasks)
DOWNLOADS = Path(tempfile.mkdtemp(prefix="mrnet-downloads-"))
CSS = ".notice {border-left: 4px solid #d97706; padding: 6px 12px; background: #fffbeb; color: #78350f;}"


def weights_markdown() -> str:
    src, prov = WEIGHTS.source, WEIGHTS.config.provenance
    if src.get("kind") == "hub":
        where = f"Hub repo `{src['repo']}` at `{src['revision']}` (commit `{src['commit'][:12]}`)"
    else:
        where = f"{'bundled' if src.get('kind') == 'bundled' else 'local'} folder `{src.get('folder')}`"
    lines = [f"**Weights:** {where}. **Trained on:** {str(prov.get('trained_on', 'not stated')).rstrip('.')}.",
             f"**Intended use:** {prov.get('intended_use', 'not stated')}"]
    if RESOLVED.notice:
        lines.append(f"**Notice:** {RESOLVED.notice}")
    return "\n\n".join(lines)


def uploaded_exam(files):
    """Only regular files inside the upload cache are read: never a folder or another path that a raw API
    call names (it could hold other visitors' uploads)."""
    return load_items(read_uploads([f if isinstance(f, str) else f.name for f in files], get_upload_folder()))


def analyze_exam(read):
    """Bad input becomes a gr.Error with our one sentence; the app keeps serving."""
    try:
        return analyze(read(), WEIGHTS)
    except MRNetError as exc:
        raise gr.Error(str(exc)) from None


def run_analysis(files, sample_title, task, method, opacity, progress=gr.Progress()):
    """Files or a sample -> the analysis kept in the session, and everything the page shows."""
    progress(0.05, desc="Reading the exam")
    if not files and not sample_title:
        raise gr.Error("Upload an exam or pick a sample patient first.")
    progress(0.3, desc="Running MRNet on every slice")
    if files:
        analysis, truth = analyze_exam(lambda: uploaded_exam(files)), None
    else:
        sample = BY_TITLE[sample_title]
        analysis, truth = analyze_exam(lambda: load_exam([sample_file(sample)])), sample.truth or None
    session = {"analysis": analysis, "truth": truth, "where": []}
    task = task if task in analysis.tasks else next(iter(analysis.tasks))
    return (session, predictions_markdown(analysis, truth)) + tuple(render_all(session, task, method, opacity, True))


def render_plane(session, plane, task, method, opacity, index):
    analysis = session["analysis"]
    raw = analysis.exam.volumes[plane][index]
    return (raw, analysis.overlay(task, plane, index, method, opacity), slice_caption(analysis, task, plane, index))


def render_all(session, task, method, opacity, move_sliders):
    """Per plane: column visibility, slider, raw, overlay, caption, plot; then the gallery."""
    analysis = session["analysis"]
    out = []
    for plane in PLANES:
        if plane not in analysis.tasks[task].planes:
            out += [gr.update(visible=False), gr.update(), None, None, f"{plane}: not in this exam", None]
            continue
        r = analysis.tasks[task].planes[plane]
        n = len(r.contributions)
        index = r.top_slice
        slider = gr.update(minimum=0, maximum=n - 1, value=index, step=1) if move_sliders else gr.update()
        raw, over, caption = render_plane(session, plane, task, method, opacity, index)
        out += [gr.update(visible=True), slider, raw, over, caption, contribution_frame(analysis, task, plane)]
    items, session["where"] = gallery_items(analysis, task, method, opacity)
    return out + [items]


def on_slider(session, task, method, opacity, index, plane):
    if not session or plane not in session["analysis"].tasks[task].planes:
        return gr.update(), gr.update(), gr.update()
    n = len(session["analysis"].exam.volumes[plane])
    return render_plane(session, plane, task, method, opacity, int(min(max(index, 0), n - 1)))


def on_view_change(session, task, method, opacity, move_sliders):
    if not session:
        return [gr.update()] * (6 * len(PLANES) + 1)
    return render_all(session, task, method, opacity, move_sliders)


def on_gallery_select(session, evt: gr.SelectData):
    """Clicking a gallery item moves that plane's slider there (its change event renders the slice)."""
    updates = [gr.update() for _ in PLANES]
    if session and evt.index is not None and evt.index < len(session["where"]):
        plane, index = session["where"][evt.index]
        updates[PLANES.index(plane)] = gr.update(value=index)
    return updates


def on_download(session, method, opacity):
    if not session:
        raise gr.Error("Run an analysis first.")
    for old in DOWNLOADS.glob("*.zip"):  # keep the folder small: downloads older than an hour go
        if time.time() - old.stat().st_mtime > 3600:
            old.unlink(missing_ok=True)
    path = DOWNLOADS / f"mrnet-overlays-{uuid.uuid4().hex[:8]}.zip"
    path.write_bytes(report_zip(session["analysis"], method, opacity))
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
    gr.Markdown(weights_markdown(), elem_id="weights-info")
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
        method = gr.Radio([("Exact slice attribution", "exact"), ("Classic CAM (blog)", "classic")], value="exact",
                          label="Method", elem_id="method")
        opacity = gr.Slider(0, 1, value=0.4, step=0.05, label="Overlay opacity", elem_id="opacity")
    plane_widgets = {}
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
            plane_widgets[plane] = (column, slider, raw, over, caption, plot)
    gallery = gr.Gallery(label="Top slices for the selected task (click to jump)", columns=6, format="png",
                         elem_id="gallery", allow_preview=False, height=300)
    with gr.Row():
        zip_button = gr.Button("Prepare zip: every overlay PNG + JSON report", elem_id="zip")
        zip_file = gr.File(label="Download", interactive=False, elem_id="zip-file")

    view_outputs = [w for plane in PLANES for w in plane_widgets[plane]] + [gallery]
    run.click(run_analysis, [files, sample, task, method, opacity], [session, predictions] + view_outputs,
              api_visibility="private")
    task.change(lambda s, t, m, o: on_view_change(s, t, m, o, True), [session, task, method, opacity], view_outputs,
                api_visibility="private")
    for control in (method, opacity):
        control.change(lambda s, t, m, o: on_view_change(s, t, m, o, False), [session, task, method, opacity],
                       view_outputs, api_visibility="private")
    for plane, (column, slider, raw, over, caption, plot) in plane_widgets.items():
        slider.change(lambda s, t, m, o, i, p=plane: on_slider(s, t, m, o, i, p), [session, task, method, opacity,
                      slider], [raw, over, caption], api_visibility="private", show_progress="hidden")
    gallery.select(on_gallery_select, [session], [plane_widgets[p][1] for p in PLANES], api_visibility="private")
    zip_button.click(on_download, [session, method, opacity], [zip_file], api_visibility="private")

    # API only: a named endpoint for gradio_client (see the README)
    api_files = gr.File(file_count="multiple", visible=False)
    api_report = gr.JSON(visible=False)
    api_button = gr.Button(visible=False)
    api_button.click(analyze_api, [api_files], [api_report], api_name="analyze")


def launch() -> None:
    auth = os.environ.get("MRNET_AUTH", "")
    demo.queue(default_concurrency_limit=int(os.environ.get("MRNET_CONCURRENCY", 2)), max_size=64)
    demo.launch(
        share=os.environ.get("MRNET_SHARE") == "1",  # fails soft offline: Gradio prints why and serves locally
        auth=tuple(auth.split(":", 1)) if ":" in auth else None,
        max_file_size=os.environ.get("MRNET_MAX_UPLOAD", "200mb"),
        theme=gr.themes.Soft(), css=CSS, show_error=True, ssr_mode=False,
    )


if __name__ == "__main__":
    launch()
