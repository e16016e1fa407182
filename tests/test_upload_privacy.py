"""One visitor must never reach another's uploads: the app reads only regular files uploaded with the
request and never walks a folder named over the network (issue: real-world inputs, item 0)."""
import json
import urllib.request

import pytest
from gradio_client import Client, handle_file

from mrnet.sets.samples import BY_KEY, sample_file

from server import running_app

pytestmark = pytest.mark.slow  # real servers, training or subprocesses: `make test-fast` skips them

PATIENT = "Doe_John_1970-01-01_MRN123456.npy"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    upload_root = tmp_path_factory.mktemp("gradio-uploads")
    with running_app({"GRADIO_TEMP_DIR": str(upload_root)}) as (url, proc, log):
        yield url, upload_root


def raw_analyze(url: str, path: str) -> str:
    """What a hand-written API call gets when it names `path` as an uploaded file (no upload made)."""
    body = json.dumps({"data": [[{"path": path, "meta": {"_type": "gradio.FileData"}}]]}).encode()
    request = urllib.request.Request(url + "gradio_api/call/analyze", data=body,
                                     headers={"Content-Type": "application/json"})
    event = json.loads(urllib.request.urlopen(request, timeout=30).read())["event_id"]
    with urllib.request.urlopen(f"{url}gradio_api/call/analyze/{event}", timeout=120) as stream:
        return stream.read().decode()


def test_another_visitors_upload_folder_and_the_cache_root_are_refused(app, tmp_path):
    url, upload_root = app
    # visitor 1 uploads a "patient" (a sagittal plane under a name that identifies someone) and analyses it
    import numpy as np
    patient = tmp_path / PATIENT.replace(".npy", "_sagittal.npy")
    np.save(patient, np.load(sample_file(BY_KEY["real-knee"]))["sagittal"])
    report = Client(url, verbose=False).predict([handle_file(str(patient))], api_name="/analyze")
    assert report["exam"]["planes"]["sagittal"]["source"] == patient.name
    folders = [p for p in upload_root.iterdir() if p.is_dir() and any(f.name == patient.name for f in p.iterdir())]
    assert len(folders) == 1, "the first visitor's upload should sit in one folder of the upload cache"
    # visitor 2 names the cache root, then visitor 1's folder, without uploading anything
    for target in (upload_root, folders[0]):
        answer = raw_analyze(url, str(target))
        assert "event: error" in answer, answer
        assert "folder" in answer and "upload" in answer, answer
        assert "Doe_John" not in answer and "MRN123456" not in answer and str(target) not in answer, answer


def test_the_viewer_folder_is_removed_when_the_app_stops(tmp_path):
    """The app's only folder of its own (the slice files the browser viewer fetches) goes with the app."""
    root = tmp_path / "gradio-cache"
    with running_app({"GRADIO_TEMP_DIR": str(root)}):
        made = list(root.glob("mrnet-viewer-*"))
        assert len(made) == 1 and made[0].is_dir()
        (made[0] / "left.bin").write_bytes(b"x")
    assert not list(root.glob("mrnet-viewer-*"))


def test_a_file_outside_the_upload_cache_is_refused(app):
    """A server path that was never uploaded (here the shipped sample) is not read: no report comes back.
    (Gradio refuses it before our code runs, echoing the path the caller sent.)"""
    url, _ = app
    answer = raw_analyze(url, str(sample_file(BY_KEY["real-knee"])))
    assert "event: error" in answer and "slice_contributions" not in answer, answer


def test_read_uploads_takes_only_regular_files_inside_one_upload_folder(tmp_path):
    from mrnet.core.errors import MRNetError
    from mrnet.inputs.uploads import NOT_AN_UPLOAD, read_uploads
    root = tmp_path / "cache"
    mine, theirs = root / "aaaa", root / "bbbb"
    mine.mkdir(parents=True)
    theirs.mkdir()
    (mine / "sagittal.npy").write_bytes(b"mine")
    (theirs / PATIENT).write_bytes(b"theirs")
    (mine / "link.npy").symlink_to(theirs / PATIENT)
    (root / "stray.npy").write_bytes(b"at the root")
    assert read_uploads([str(mine / "sagittal.npy")], root) == [("sagittal.npy", b"mine")]
    for bad in (root, theirs, mine / "link.npy", root / "stray.npy", tmp_path / "missing.npy", "/etc/hostname"):
        with pytest.raises(MRNetError) as err:
            read_uploads([str(mine / "sagittal.npy"), str(bad)], root)
        assert str(err.value) == NOT_AN_UPLOAD
