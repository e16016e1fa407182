"""The Gradio app: upload an exam or pick a sample -> probabilities, and a slice viewer with CAM overlays
drawn in the browser (mrnet/web/viewer.js).

Only wiring lives here; everything it calls is in the importable `mrnet` library. Settings come from the
environment (mrnet.settings; the README lists them), plus GRADIO_SERVER_NAME / GRADIO_SERVER_PORT
(default 127.0.0.1:7860).
"""
from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import gradio as gr  # noqa: E402
from gradio.utils import get_upload_folder  # noqa: E402

from mrnet import DISCLAIMER, Analysis, MRNetError, analyze, load_exam, load_items  # noqa: E402
from mrnet.access import ThrottledLogin, parse_auth  # noqa: E402
from mrnet.compute import compute_for  # noqa: E402
from mrnet.explain import METHODS  # noqa: E402
from mrnet.hub import resolve  # noqa: E402
from mrnet.present import predictions_markdown, report_zip, viewer_assets, viewer_payload, viewer_view, weights_markdown  # noqa: E402
from mrnet.render import Renderer  # noqa: E402
from mrnet.settings import settings  # noqa: E402
from mrnet.toolchain.samples import BY_TITLE, SAMPLES, sample_file  # noqa: E402  (phantom samples need the generator)
from mrnet.uploads import read_uploads  # noqa: E402

COMPUTE = compute_for()
RESOLVED = resolve(settings().weights)  # once, at start
WEIGHTS = RESOLVED.weights.to(COMPUTE.device)
VIEWER_HTML, VIEWER_CSS, VIEWER_JS = viewer_assets()
CSS = ".notice {border-left: 4px solid #d97706; padding: 6px 12px; background: #fffbeb; color: #78350f;}"


@dataclass
class Session:
    """One visitor's analysis and what draws its overlays for the zip (the viewer draws in the browser)."""
    analysis: Analysis
    renderer: Renderer


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
    return {session: Session(analysis, Renderer(analysis)), predictions: predictions_markdown(analysis, truth),
            viewer: gr.HTML(value=viewer_view(analysis), data=viewer_payload(analysis))}


def on_download(state: Session | None, view: dict | None) -> str:
    """The zip (every overlay with the viewer's method and opacity) goes into a folder of its own in Gradio's
    cache, which `delete_cache` empties after an hour."""
    if not state:
        raise gr.Error("Run an analysis first.")
    view = view or {}
    method = view.get("method") if view.get("method") in METHODS else "exact"
    opacity = view.get("opacity")
    opacity = min(max(float(opacity), 0.0), 1.0) if isinstance(opacity, (int, float)) else 0.4
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
        files = gr.File(label="Exam files (.npy per plane, .npz, .zip, NIfTI, DICOM)", file_count="multiple", scale=3,
                        elem_id="files")
        with gr.Column(scale=2):
            sample = gr.Dropdown([s.title for s in SAMPLES], value=SAMPLES[1].title, label="…or a sample patient",
                                 elem_id="sample")
            gr.Markdown("The real knee sample: " + next(s.note for s in SAMPLES if s.note))
            run = gr.Button("Analyze", variant="primary", elem_id="analyze")
    predictions = gr.Markdown(elem_id="predictions")
    viewer = gr.HTML(value=None, html_template=VIEWER_HTML, css_template=VIEWER_CSS, js_on_load=VIEWER_JS,
                     data=None, elem_id="viewer", apply_default_css=False)
    with gr.Row():
        zip_button = gr.Button("Prepare zip: every overlay PNG (the viewer's method and opacity) + JSON report",
                               elem_id="zip")
        zip_file = gr.File(label="Download", interactive=False, elem_id="zip-file")

    run.click(run_analysis, [files, sample], [session, predictions, viewer], api_visibility="private")
    zip_button.click(on_download, [session, viewer], [zip_file], api_visibility="private")

    # API only: a named endpoint for gradio_client (see the README)
    api_files = gr.File(file_count="multiple", visible=False)
    api_report = gr.JSON(visible=False)
    api_button = gr.Button(visible=False)
    api_button.click(analyze_api, [api_files], [api_report], api_name="analyze")


def launch() -> None:
    config = settings()
    try:
        login = parse_auth(config.auth)
    except MRNetError as exc:  # fail closed: never serve without the login that was asked for
        raise SystemExit(f"error: {exc}") from None
    demo.queue(default_concurrency_limit=config.concurrency, max_size=64)
    demo.launch(
        share=config.share,  # fails soft offline: Gradio prints why and serves locally
        auth=ThrottledLogin(*login).check if login else None,
        max_file_size=f"{config.max_upload_mb}mb",
        theme=gr.themes.Soft(), css=CSS, show_error=True, ssr_mode=False,
    )


if __name__ == "__main__":
    launch()
