"""`python -m mrnet space --repo owner/name`: create a Gradio Space and upload exactly the files it runs on.

The Hub refuses a git push that holds binary files not stored with Xet/LFS, so the Space is never pushed with
git: `HfApi.upload_folder` stores the binaries (weights, the real knee sample) the Hub's way. What goes up:
the launcher (app.py), the runtime requirements, the README (its front matter makes the repo a Space), the
package without its tests, the bundled weights and the app's samples. Never tests, docs, figures or data.
`tests/test_space.py` copies exactly this list to an empty folder and runs the app from it.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from fnmatch import fnmatch
from pathlib import Path

from mrnet.core.errors import MRNetError
from mrnet.core.hub import parse_source

ROOT = Path(__file__).resolve().parents[2]
# what a Space needs, as paths relative to the repository (fnmatch patterns; '*' crosses folders)
SPACE_FILES = ["app.py", "requirements.txt", "README.md", ".gitattributes", "mrnet/*.py",
               "mrnet/app/web/*", "mrnet/sets/sample_data/*",
               "weights/config.json", "weights/*.safetensors", "weights/README.md", "weights/scores-phantom.csv",
               # the bundled pair for the Cases view's compare mode
               "weights-maskloss/config.json", "weights-maskloss/*.safetensors", "weights-maskloss/README.md",
               "weights-maskloss/scores-phantom.csv"]


def repository_files(root: Path) -> list[str]:
    """The checkout's tracked files (git), else every file under it: nothing untracked or ignored leaks out."""
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout
        return sorted(f for f in out.decode().split("\0") if f)
    except (OSError, subprocess.CalledProcessError):
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and ".git" not in p.parts)


def space_files(root: Path = ROOT) -> list[str]:
    files = [f for f in repository_files(root) if any(fnmatch(f, pattern) for pattern in SPACE_FILES)]
    if "app.py" not in files or not any(f.endswith(".safetensors") for f in files):
        raise MRNetError(f"{root} is not this project's checkout with its bundled weights: nothing to deploy.")
    return files


def stage(files: list[str], into: Path, root: Path = ROOT) -> Path:
    """Exactly `files`, copied into the folder `into` (what the Space gets; the bundle test runs it)."""
    for name in files:
        target = into / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, target)
    return into


def run_space(repo: str, private: bool = False, dry_run: bool = False, root: Path = ROOT) -> dict:
    parse_source(repo)  # a valid owner/name
    files = space_files(root)
    listed = [{"file": f, "bytes": (root / f).stat().st_size} for f in files]
    result = {"repo": repo, "private": private, "dry_run": dry_run, "files": listed,
              "bytes": sum(f["bytes"] for f in listed)}
    if dry_run:
        return result
    from huggingface_hub import HfApi
    api = HfApi()
    api.create_repo(repo, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mrnet-space-") as folder:
        info = api.upload_folder(folder_path=str(stage(files, Path(folder), root)), repo_id=repo, repo_type="space",
                                 commit_message="Deploy the MRNet explainer (python -m mrnet space)")
    result["commit"] = getattr(info, "oid", None)
    result["url"] = f"https://huggingface.co/spaces/{repo}"
    return result
