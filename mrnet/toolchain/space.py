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
               "mrnet/app/web/*.js", "mrnet/app/web/*.css", "mrnet/app/web/*.html",
               "mrnet/sets/sample_data/*.npz", "mrnet/sets/sample_data/*.md",
               "weights/config.json", "weights/*.safetensors", "weights/README.md", "weights/scores-phantom.csv",
               # the bundled pair for the Cases view's compare mode
               "weights-maskloss/config.json", "weights-maskloss/*.safetensors", "weights-maskloss/README.md",
               "weights-maskloss/scores-phantom.csv"]


def repository_files(root: Path) -> list[str]:
    """The checkout's tracked files (git). Without a git checkout (a downloaded tarball) nothing is listed: the
    files beside the bundled ones there (an `.env`, a key, a patient's exam) cannot be told from the project's."""
    if not (root / ".git").exists():
        raise MRNetError(f"{root.name} is not a git checkout, so the files a Space gets cannot be told from others "
                         "beside them; run `mrnet space` from a clone of the repository.")
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        raise MRNetError(f"git cannot list the tracked files of {root.name}; run `mrnet space` from a clone of the "
                         "repository.") from None
    return sorted(f for f in out.decode("utf-8", "replace").split("\0") if f)


# never uploaded, even when tracked and matching a pattern: secrets and keys that a force-add may have tracked
SECRET_NAMES = (".env", ".env.*", "*.pem", "*.key", "id_rsa*", "id_ed25519*", ".netrc", "*.secret*", "credentials*")


def space_files(root: Path = ROOT) -> list[str]:
    """The tracked files a Space runs on. A symlink is refused (it would upload what it points at), and so is a
    tracked file missing from the disk; a file whose name is a secret's is never listed."""
    files = []
    for name in repository_files(root):
        if not any(fnmatch(name, pattern) for pattern in SPACE_FILES):
            continue
        if any(fnmatch(Path(name).name, secret) for secret in SECRET_NAMES):
            continue
        path = root / name
        chain = [path, *(root / parent for parent in Path(name).parents if str(parent) != ".")]
        if any(link.is_symlink() for link in chain):
            raise MRNetError(f"{name} is a symbolic link; a Space gets files, never what a link points at. Replace it "
                             "with the file itself.")
        if not path.is_file():
            raise MRNetError(f"{name} is tracked by git but missing from the disk; restore it (git checkout -- "
                             f"{name}) or remove it from git.")
        files.append(name)
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


def front_matter(readme: str) -> dict[str, str]:
    """The README's YAML front matter (what makes the repo a Space: sdk, sdk_version, python_version, ...), as
    flat `key: value` pairs."""
    if not readme.startswith("---\n") or "\n---" not in readme[4:]:
        raise MRNetError("README.md has no front matter (--- ... ---): a Space needs one.")
    block = readme[4:readme.index("\n---", 4)]
    pairs = (line.partition(":") for line in block.splitlines() if ":" in line and not line.startswith((" ", "-")))
    return {key.strip(): value.strip().strip('"') for key, _, value in pairs}


def run_space(repo: str, private: bool = False, dry_run: bool = False, root: Path = ROOT) -> dict:
    parse_source(repo)  # a valid owner/name
    files = space_files(root)
    listed = [{"file": f, "bytes": (root / f).stat().st_size} for f in files]
    result = {"repo": repo, "private": private, "dry_run": dry_run,
              "front_matter": front_matter((root / "README.md").read_text(encoding="utf-8")), "files": listed,
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
