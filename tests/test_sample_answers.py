"""Instant samples (#38): a sample's answer is made once per app (its weights and precision) and served from
memory after; the cached answer equals a fresh analysis, down to the bytes of the viewer's slice files."""
import json
from pathlib import Path

from mrnet.app.context import create_context
from mrnet.app.payload import viewer_payload
from mrnet.app.present import predictions_markdown
from mrnet.core.compute import compute_for
from mrnet.core.settings import Settings
from mrnet.inputs.load import load_exam
from mrnet.sets.samples import BY_KEY, sample_file


def resolved(value, folder: Path):
    """The payload with each slice file's URL replaced by the file's bytes (the names are random per write)."""
    if isinstance(value, dict):
        return {k: resolved(v, folder) for k, v in value.items() if k != "id"}
    if isinstance(value, list):
        return [resolved(v, folder) for v in value]
    if isinstance(value, str) and value.startswith("gradio_api/file="):
        path = Path(value.removeprefix("gradio_api/file="))
        assert path.parent == folder
        return path.read_bytes()
    return value


def test_a_cached_sample_answer_equals_a_fresh_analysis(tmp_path):
    ctx = create_context(Settings(flags=str(tmp_path / "flags.sqlite")), compute_for("cpu", "fp32"))
    try:
        key = "phantom-acl"
        made = []
        make = ctx.samples.make
        ctx.samples.make = lambda k: made.append(k) or make(k)
        first = ctx.samples.get(key)
        again = ctx.samples.get(key)
        assert made == [key] and again[0] is first[0] and again[1] is first[1]  # made once, then from memory
        fresh = ctx.analyzer.read_and_analyze(lambda: load_exam([sample_file(BY_KEY[key])]))
        fresh_payload = viewer_payload(fresh, store=ctx.pixels, link={"sample": key})  # as the app makes a sample's
        assert json.dumps(fresh.report(), sort_keys=True) == json.dumps(first[0].report(), sort_keys=True)
        truth = BY_KEY[key].truth
        assert predictions_markdown(fresh, truth) == predictions_markdown(first[0], truth)
        assert resolved(fresh_payload, ctx.pixels.folder) == resolved(first[1], ctx.pixels.folder)
    finally:
        ctx.close()
