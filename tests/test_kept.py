"""What the server keeps between a visitor's events is bounded for all visitors together (#37): analyses in
memory (KeptAnalyses), zips on disk (ZipFolder), and through the real app, one zip per session."""
import zipfile
from pathlib import Path

import httpx
import numpy as np
import pytest

from mrnet.app.kept import KeptAnalyses, ZipFolder, analysis_bytes

from helpers import event_messages
from server import running_app


@pytest.fixture(scope="module")
def analyses(random_weights):
    from mrnet.core.analysis import analyze
    from mrnet.core.compute import compute_for
    from mrnet.core.exam import Exam
    from mrnet.core.weights import load_weights
    weights, compute = load_weights(random_weights), compute_for("cpu", "fp32")
    rng = np.random.default_rng(0)
    return [analyze(Exam(volumes={"sagittal": rng.integers(0, 255, (4, 256, 256), dtype=np.uint8)}), weights, compute)
            for _ in range(4)]


def test_kept_analyses_stay_within_their_bound_least_recently_used_first(analyses):
    size = analysis_bytes(analyses[0])
    assert size >= 4 * 256 * 256
    kept = KeptAnalyses(max_bytes=int(2.5 * size))
    keys = [kept.put(analyses[0]), kept.put(analyses[1])]
    assert kept.get(keys[0]) is analyses[0]  # used: now the most recent
    keys.append(kept.put(analyses[2]))
    assert kept.get(keys[1]) is None and kept.get(keys[0]) is analyses[0] and kept.get(keys[2]) is analyses[2]
    assert kept.nbytes <= 2.5 * size
    assert kept.get("guess") is None and kept.get(None) is None and kept.get(7) is None
    tiny = KeptAnalyses(max_bytes=1)
    assert tiny.get(tiny.put(analyses[3])) is analyses[3]  # the newest always stays


def test_each_session_keeps_one_zip_and_all_of_them_fit_the_bound(tmp_path):
    zips = ZipFolder(tmp_path / "zips", max_bytes=3000)
    for session in ("a", "b", "a", "c", "a"):
        path = zips.new_path(session)
        path.write_bytes(b"z" * 1000)
        zips.trim(keep=path)
    left = sorted(p.parent.name.split("-")[0] for p in (tmp_path / "zips").glob("*/mrnet-overlays.zip"))
    assert left == ["a", "b", "c"] and zips.total() <= 3000
    big = zips.new_path("d")
    big.write_bytes(b"z" * 2500)
    zips.trim(keep=big)  # the oldest others go until it fits
    assert zips.total() <= 3000 and big.exists()
    assert len(list((tmp_path / "zips").iterdir())) == len(list((tmp_path / "zips").glob("*/mrnet-overlays.zip")))


@pytest.mark.slow
def test_twenty_zip_clicks_leave_one_zip_per_session(tmp_path):
    """The real app: one session analyses a sample (the real knee: one plane, the smallest zip) and prepares its
    zip 20 times, another once; the disk holds the latest zip of each, complete, and nothing else of theirs."""
    with running_app({"GRADIO_TEMP_DIR": str(tmp_path)}) as (url, proc, log):
        config = httpx.get(url + "config").json()
        by_api = {d.get("api_name"): i for i, d in enumerate(config["dependencies"])}
        sample = next(c for c in config["components"] if c.get("props", {}).get("elem_id") == "sample")
        title = next(c[0] for c in sample["props"]["choices"] if c[0].startswith("Real knee"))  # one plane: a small zip
        run_inputs = [title if i == sample["id"] else None for i in config["dependencies"][by_api["run_analysis"]]["inputs"]]
        paths = []
        for session, clicks in (("zipper01", 20), ("zipper02", 1)):
            messages, _ = event_messages(url, config, by_api["run_analysis"], run_inputs, session)
            assert messages[-1]["success"], messages[-1]
            for _ in range(clicks):
                messages, _ = event_messages(url, config, by_api["on_download"], [None, None], session)
                assert messages[-1]["success"], messages[-1]
                update = messages[-1]["output"]["data"][0]   # the download box, shown with the zip in it
                assert update["visible"] is True
                paths.append(update["value"]["path"])
        zips = sorted(Path(tmp_path).rglob("mrnet-overlays.zip"))
        assert zips == sorted(Path(p) for p in {paths[19], paths[20]})
        with zipfile.ZipFile(zips[0]) as zf:
            assert "report.json" in zf.namelist() and any(n.endswith(".png") for n in zf.namelist())
