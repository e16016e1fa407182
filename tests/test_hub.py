"""Weights from a hub over HTTP: a real hub-compatible server (olah, offline mode) serving local git repos."""
import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import make_weights

from mrnet.sets.samples import BY_KEY, sample_file

from helpers import write_set
from hubserver import HubServer, git_repo_with
from server import ROOT

pytestmark = pytest.mark.hub


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub")
    server = HubServer(root)
    v1 = make_weights(root / "v1", seed=1)
    v2 = make_weights(root / "v2", seed=2)
    repo = server.repo("acme/knee-mrnet")
    server.sha_v1 = git_repo_with(repo, v1, "v1")
    subprocess.run(["git", "tag", "v1"], cwd=repo, check=True)
    server.sha_v2 = git_repo_with(repo, v2, "v2")
    # a repo whose safetensors file no longer matches the sha256 in its config.json
    tampered = make_weights(root / "tampered", seed=3)
    data = bytearray((tampered / "axial.safetensors").read_bytes())
    data[-100] ^= 0x55
    (tampered / "axial.safetensors").write_bytes(bytes(data))
    git_repo_with(server.repo("acme/tampered"), tampered, "tampered")
    # a private-hospital-style dataset repo in MRNet's layout
    dataset = write_set(root / "dataset-files", n=4, slices=6)
    shutil.copytree(dataset, server.mirrors / "datasets" / "acme" / "knee-set")
    git_repo_with(server.mirrors / "datasets" / "acme" / "knee-set", dataset, "a labelled set")
    server.config_sha = {v: json.loads((root / v / "config.json").read_text())["models"][0]["sha256"] for v in ("v1", "v2")}
    server.start()
    yield server
    server.stop()


def predict(source, hf_home, endpoint, offline=False):
    """`python -m mrnet predict --weights SOURCE` in a fresh interpreter (HF_ENDPOINT is read at import)."""
    env = dict(os.environ, HF_ENDPOINT=endpoint, HF_HOME=str(hf_home), HF_HUB_DISABLE_TELEMETRY="1")
    env.pop("HF_HUB_OFFLINE", None)
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    run = subprocess.run([sys.executable, "-m", "mrnet", "predict", str(sample_file(BY_KEY["real-knee"])),
                          "--weights", source], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    report = json.loads(run.stdout) if run.returncode == 0 else None
    return run, report


def test_branch_tag_and_commit(hub, tmp_path):
    home = tmp_path / "hf"
    run, report = predict("acme/knee-mrnet", home, hub.url)
    assert run.returncode == 0, run.stderr
    assert report["weights"]["source"] == {"kind": "hub", "repo": "acme/knee-mrnet", "revision": "main",
                                           "commit": hub.sha_v2}
    run, by_tag = predict("acme/knee-mrnet@v1", home, hub.url)
    assert run.returncode == 0, run.stderr
    assert by_tag["weights"]["source"]["commit"] == hub.sha_v1
    run, by_sha = predict(f"acme/knee-mrnet@{hub.sha_v1}", home, hub.url)
    assert run.returncode == 0, run.stderr
    assert by_sha["tasks"] == by_tag["tasks"] and by_sha["tasks"] != report["tasks"]
    # the snapshot landed in the normal HF cache
    assert list((home / "hub").glob("models--acme--knee-mrnet/snapshots/*/config.json"))


def test_cache_serves_when_the_server_is_down(hub, tmp_path):
    home = tmp_path / "hf"
    run, online = predict(f"acme/knee-mrnet@{hub.sha_v1}", home, hub.url)
    assert run.returncode == 0, run.stderr
    run2, branch = predict("acme/knee-mrnet", home, hub.url)
    assert run2.returncode == 0
    hub.stop()
    try:
        run, cached = predict(f"acme/knee-mrnet@{hub.sha_v1}", home, hub.url)
        assert run.returncode == 0, run.stderr
        assert cached["tasks"] == online["tasks"]
        assert "notice" not in run.stderr  # a pinned commit needs no round-trip
        run, cached_branch = predict("acme/knee-mrnet", home, hub.url)
        assert run.returncode == 0, run.stderr
        assert "Using the cached copy of acme/knee-mrnet" in run.stderr
        assert cached_branch["weights"]["source"]["commit"] == hub.sha_v2
        run, fallback = predict("acme/never-downloaded", home, hub.url)
        assert run.returncode == 0, run.stderr
        assert "Using the bundled weights instead of acme/never-downloaded" in run.stderr
        assert fallback["weights"]["source"]["kind"] == "bundled"
        run, offline = predict("acme/knee-mrnet", home, hub.url, offline=True)
        assert run.returncode == 0 and "offline mode is on" in run.stderr
    finally:
        hub.start()


def test_missing_revision_is_a_clear_error(hub, tmp_path):
    run, _ = predict("acme/knee-mrnet@no-such-branch", tmp_path / "hf", hub.url)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        "error: The Hub repo acme/knee-mrnet has no revision 'no-such-branch' (branch, tag or commit)."]


def test_tampered_file_is_refused(hub, tmp_path):
    run, _ = predict("acme/tampered", tmp_path / "hf", hub.url)
    assert run.returncode == 2
    assert "sha256" in run.stderr and "Traceback" not in run.stderr


def test_app_with_hub_weights_pinned_to_a_commit(hub, tmp_path):
    from gradio_client import Client, handle_file

    from server import running_app
    env = {"MRNET_WEIGHTS": f"acme/knee-mrnet@{hub.sha_v1}", "HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf")}
    with running_app(env) as (url, proc, log):
        report = Client(url, verbose=False).predict([handle_file(str(sample_file(BY_KEY["real-knee"])))],
                                                    api_name="/analyze")
    assert report["weights"]["source"] == {"kind": "hub", "repo": "acme/knee-mrnet", "revision": hub.sha_v1,
                                           "commit": hub.sha_v1}


def test_a_hub_dataset_repo_is_scored(hub, tmp_path, random_weights):
    env = dict(os.environ, HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf"), HF_HUB_DISABLE_TELEMETRY="1")
    env.pop("HF_HUB_OFFLINE", None)

    def score(source):
        return subprocess.run([sys.executable, "-m", "mrnet", "score", source, "--out", str(tmp_path / "s.csv"),
                               "--weights", str(random_weights), "--no-progress"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300)
    run = score("acme/knee-set")
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["cases"] == 4 and summary["scored"] == 4 and summary["auc"]["acl"]["n"] == 4
    assert list((tmp_path / "hf" / "hub").glob("datasets--acme--knee-set/snapshots/*/valid/axial/0000.npy"))
    run = score("acme/no-such-set")
    assert run.returncode == 2
    assert run.stderr.strip() == ("error: The Hub dataset acme/no-such-set does not exist or is private "
                                  "(check the name and HF_TOKEN).")


@pytest.mark.browser
def test_the_app_browses_a_hub_dataset_repo(hub, tmp_path, browser):
    from browser import analysis_id, cases_tab, listed_cases, viewer_shows
    from server import running_app
    env = {"MRNET_DATA": "acme/knee-set", "HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf"),
           "MRNET_FLAGS": str(tmp_path / "flags.sqlite")}
    with running_app(env) as (url, proc, log):
        page = browser.new_page(viewport={"width": 1500, "height": 1500})
        page.goto(url)
        cases_tab(page)
        assert page.locator("#cases .mrc-title").inner_text().startswith("acme/knee-set")
        assert listed_cases(page) == ["0000", "0001", "0002", "0003"]
        before = analysis_id(page)
        page.locator("#cases .mrc-table tr[data-case='0001']").click()
        viewer_shows(page, before)
        page.wait_for_function("() => document.querySelector('#viewer .mrv-link').value.includes('case=0001')")
        link = page.locator("#viewer .mrv-link").input_value()
        assert "dataset=" not in link  # MRNET_DATA's set is the default: its links need not name it
        other = browser.new_page(viewport={"width": 1500, "height": 1500})
        other.goto(link)
        other.wait_for_function("() => document.querySelector('#viewer .mrv')?.dataset.ready === '1'", timeout=90_000)
        assert "Exam: 0001.npy" in other.locator("#predictions").inner_text()
        page.close()
        other.close()


def test_bad_source_syntax(tmp_path):
    from mrnet import MRNetError
    from mrnet.core.hub import parse_source
    assert parse_source("acme/knee@v1") == ("acme/knee", "v1")
    assert parse_source("acme/knee") == ("acme/knee", None)
    for bad in ("acme", "acme/knee@", "a/b/c", "../x"):
        with pytest.raises(MRNetError):
            parse_source(bad)
