"""A Space in one command: `python -m mrnet space --dry-run` lists exactly the files a Space gets, and those
files alone run the app: copied to an empty folder and started there on the runtime requirements only, an
upload (API) and a sample (chromium) analyse."""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mrnet.toolchain.space import space_files, stage

from helpers import mrnet_cli
from server import ROOT, running_app


def runtime_site(into: Path) -> Path:
    """A site folder holding only requirements.txt's distributions and what they require (links into this
    venv's site-packages): what a Space installs, and none of the dev tools."""
    from importlib.metadata import PackageNotFoundError, distribution

    from packaging.requirements import Requirement
    lines = [re.sub(r"#.*", "", line).strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    todo, seen = [Requirement(line).name for line in lines if line], {}
    while todo:
        name = re.sub(r"[-_.]+", "-", todo.pop()).lower()
        if name in seen:
            continue
        try:
            seen[name] = dist = distribution(name)
        except PackageNotFoundError:  # a requirement of an extra or a platform that is not installed here
            continue
        for raw in dist.requires or []:
            req = Requirement(raw)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    into.mkdir()
    for dist in seen.values():
        for top in {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}:
            source, link = Path(dist.locate_file(top)), into / top
            if source.exists() and not link.exists() and not top.endswith(".pth"):
                link.symlink_to(source)
    return into


def test_the_dry_run_lists_exactly_what_a_space_runs_on():
    run = mrnet_cli("space", "--repo", "someone/mrnet-demo", "--dry-run")
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    files = [f["file"] for f in result["files"]]
    assert {"app.py", "requirements.txt", "README.md", "weights/config.json", "weights/sagittal.safetensors",
            "mrnet/app/ui.py", "mrnet/app/web/viewer.js", "mrnet/sets/sample_data/real_knee_sagittal.npz",
            "mrnet/sets/sample_data/PROVENANCE.md", "mrnet/core/model.py"} <= set(files)
    assert not [f for f in files if f.startswith(("tests/", "docs/", "data/", ".ci/"))]
    assert result["bytes"] == sum((ROOT / f).stat().st_size for f in files) and result["dry_run"] is True
    assert mrnet_cli("space", "--repo", "not a repo", "--dry-run").returncode == 2
    # the front matter it will push (#38): a Gradio that requirements.txt admits (the one the suite last ran on: a
    # Space installs sdk_version), a Python, a short description within the Hub's 60 characters, a hardware hint
    from packaging.requirements import Requirement
    gradio = next(Requirement(re.sub(r"#.*", "", line)) for line in (ROOT / "requirements.txt").read_text().splitlines()
                  if line.startswith("gradio"))
    matter = result["front_matter"]
    assert matter["sdk"] == "gradio" and gradio.specifier.contains(matter["sdk_version"])
    assert matter["python_version"] == "3.11" and 0 < len(matter["short_description"]) <= 60
    assert matter["suggested_hardware"] and matter["app_file"] == "app.py"


def test_zero_gpu_asks_for_time_by_the_exams_slices():
    from mrnet.app.context import gpu_seconds
    from mrnet.core.exam import Exam
    small = Exam(volumes={"sagittal": np.zeros((20, 4, 4), np.uint8)})
    large = Exam(volumes={p: np.zeros((128, 4, 4), np.uint8) for p in ("axial", "coronal", "sagittal")})
    assert gpu_seconds(small) == 12 and gpu_seconds(large) == 48 and gpu_seconds(Exam(volumes={})) == 10


@pytest.mark.browser
def test_the_space_files_alone_run_the_app(tmp_path, browser):
    """`python -S` with PYTHONPATH=the runtime site: no dev package, and no mrnet but the bundle's."""
    from gradio_client import Client, handle_file

    from mrnet.sets.samples import BY_KEY, sample_file

    bundle = stage(space_files(), tmp_path / "space")
    site = runtime_site(tmp_path / "site")
    assert not [p for p in ("sklearn", "matplotlib", "pytest", "playwright", "mrnet") if (site / p).exists()]
    python = [sys.executable, "-S"]
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}
    probe = subprocess.run(python + ["-c", "import mrnet, gradio, torch; print(mrnet.__file__)"], cwd=bundle, env=env,
                           capture_output=True, text=True)
    assert probe.stdout.strip() == str(bundle / "mrnet" / "__init__.py"), probe.stderr[-2000:]
    blocked = subprocess.run(python + ["-c", "import sklearn"], cwd=bundle, env=env, capture_output=True, text=True)
    assert "No module named 'sklearn'" in blocked.stderr
    with running_app({**env, "MRNET_FLAGS": str(tmp_path / "flags.sqlite")}, cwd=bundle, python=python) as (url, _, _):
        report = Client(url, verbose=False).predict([handle_file(str(sample_file(BY_KEY["phantom-acl"])))],
                                                    api_name="/analyze")
        assert set(report["tasks"]) == {"abnormal", "acl", "meniscus"}
        page = browser.new_page()
        page.goto(url)
        page.locator("#analyze").click()  # the default sample patient
        page.wait_for_selector("#viewer .mrv[data-ready='1']", timeout=90_000)
        assert "Probability" in page.locator("#predictions").inner_text()
        page.close()


def git_checkout(root: Path) -> Path:
    """A small checkout with what a Space needs: the launcher and a weights file, tracked by git."""
    (root / "weights").mkdir(parents=True)
    (root / "mrnet" / "app" / "web").mkdir(parents=True)
    (root / "app.py").write_text("print('app')\n")
    (root / "weights" / "plane.safetensors").write_bytes(b"weights")
    (root / "mrnet" / "app" / "web" / "viewer.js").write_text("// viewer\n")
    for args in (["init", "-q"], ["add", "-A"]):
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)
    return root


def test_the_space_bundle_refuses_links_missing_files_and_loose_folders_and_never_lists_secrets(tmp_path):
    """#37: a tracked symlink (to a secret) is refused with a sentence; a tarball without .git is refused; a
    force-added .env in web/ is never listed; a tracked file deleted from disk is one sentence."""
    from mrnet.core.errors import MRNetError
    root = git_checkout(tmp_path / "repo")
    assert space_files(root) == ["app.py", "mrnet/app/web/viewer.js", "weights/plane.safetensors"]
    secret = tmp_path / "secret.txt"
    secret.write_text("token")
    (root / "mrnet" / "app" / "web" / "extra.js").symlink_to(secret)
    (root / "mrnet" / "app" / "web" / ".env").write_text("HF_TOKEN=x")
    subprocess.run(["git", "add", "-f", "-A"], cwd=root, check=True, capture_output=True)
    with pytest.raises(MRNetError, match=r"^mrnet/app/web/extra.js is a symbolic link"):
        space_files(root)
    (root / "mrnet" / "app" / "web" / "extra.js").unlink()
    with pytest.raises(MRNetError, match=r"^mrnet/app/web/extra.js is tracked by git but missing from the disk"):
        space_files(root)
    subprocess.run(["git", "rm", "-q", "--cached", "mrnet/app/web/extra.js"], cwd=root, check=True)
    assert ".env" not in " ".join(space_files(root))
    tarball = tmp_path / "tarball"
    shutil.copytree(root, tarball, ignore=shutil.ignore_patterns(".git"))
    (tarball / "weights" / "id_rsa").write_text("key")
    with pytest.raises(MRNetError, match="is not a git checkout"):
        space_files(tarball)
