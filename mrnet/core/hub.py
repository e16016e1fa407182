"""Where the weights come from - the one place that talks to the Hugging Face Hub.

A source is a local folder, or a Hub repo id with an optional revision: `owner/name`,
`owner/name@main`, `owner/name@v1.0`, `owner/name@<40-hex commit>`. Empty means the bundled
`weights/`. Hub snapshots land in the normal HF cache and are verified against the sha256 in
config.json when loaded. When the Hub cannot be reached, a cached snapshot of that revision is
used, else the bundled weights; the notice says which and why.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mrnet.core.errors import MRNetError
from mrnet.core.weights import Weights, load_weights

BUNDLED = Path(__file__).resolve().parents[2] / "weights"  # the repository's weights/, beside mrnet/
# the bundled demo's second weights for compare mode: the earlier recipe with a per-location loss on lesion masks
BUNDLED_PAIR = BUNDLED.parent / "weights-maskloss"
WEIGHT_FILES = ["config.json", "*.safetensors", "README.md"]
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
COMMIT = re.compile(r"^[0-9a-f]{40}$")


@dataclass
class Resolved:
    weights: Weights
    notice: str = ""   # non-empty when something other than what was asked for is used


def parse_source(source: str) -> tuple[str, str | None]:
    """'owner/name@rev' -> ('owner/name', 'rev'); 'owner/name' -> ('owner/name', None)."""
    repo, _, revision = source.partition("@")
    if not REPO_ID.match(repo) or (_ and not revision):
        raise MRNetError(f"{source!r} is neither a weights folder nor a Hub repo id like owner/name or owner/name@revision.")
    return repo, revision or None


def bundled(notice: str = "") -> Resolved:
    return Resolved(load_weights(BUNDLED, source={"kind": "bundled", "folder": "weights"}), notice)


def resolve(source: str | None) -> Resolved:
    """Local folder, Hub repo (with fallback) or the bundled weights."""
    if not source:
        return bundled()
    if Path(source).expanduser().is_dir():
        path = Path(source).expanduser()
        return Resolved(load_weights(path, source={"kind": "local", "folder": str(path)}))
    repo, revision = parse_source(source)
    return from_hub(repo, revision)


def resolve_compare(source: str, first: Weights) -> Resolved | None:
    """MRNET_COMPARE: `none` -> no second weights; empty -> the bundled pair when the first weights are the
    bundled ones (else none); anything else is resolved as MRNET_WEIGHTS is."""
    if source.strip().lower() == "none":
        return None
    if not source:
        if first.source.get("kind") != "bundled" or not (BUNDLED_PAIR / "config.json").is_file():
            return None
        return Resolved(load_weights(BUNDLED_PAIR, source={"kind": "bundled", "folder": BUNDLED_PAIR.name}))
    return resolve(source)


def network_errors() -> tuple:
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled
    errors = [HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled, OSError, TimeoutError]
    for client in ("httpx", "httpx2"):  # huggingface_hub 1.x uses httpx, 2.x its fork httpx2
        try:
            errors.append(__import__(client).HTTPError)
        except (ImportError, AttributeError):
            pass
    return tuple(errors)


def from_hub(repo: str, revision: str | None) -> Resolved:
    # Imported here: HF_ENDPOINT / HF_HUB_OFFLINE are read at import time, and callers may set them first.
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError
    asked = f"{repo}@{revision}" if revision else repo
    wanted = revision or "main"

    def snapshot(rev: str, local_only: bool) -> Path:
        return Path(snapshot_download(repo_id=repo, revision=rev, allow_patterns=WEIGHT_FILES,
                                      local_files_only=local_only))

    folder, notice = None, ""
    if COMMIT.match(wanted):
        try:  # a pinned commit never changes: a cached snapshot needs no network round-trip
            folder = snapshot(wanted, local_only=True)
        except (LocalEntryNotFoundError, FileNotFoundError, ValueError):
            folder = None
    if folder is None:
        try:
            # Ask the Hub first, so that an unreachable Hub is noticed (and said) instead of a cached
            # snapshot being used silently; then download by the name asked for, so the cache records it.
            HfApi().model_info(repo, revision=wanted)
            folder = snapshot(wanted, local_only=False)
        except RevisionNotFoundError:
            raise MRNetError(f"The Hub repo {repo} has no revision {wanted!r} (branch, tag or commit).") from None
        except RepositoryNotFoundError:
            if wanted != "main" and repo_exists(repo):  # some hub servers answer "no repo" for a missing revision
                raise MRNetError(f"The Hub repo {repo} has no revision {wanted!r} (branch, tag or commit).") from None
            raise MRNetError(f"The Hub repo {repo} does not exist or is private (check the name and HF_TOKEN).") from None
        except network_errors() as exc:
            why = "offline mode is on (HF_HUB_OFFLINE=1)" if is_offline(exc) else "the Hub could not be reached"
            try:
                folder = snapshot(wanted, local_only=True)
                notice = f"Using the cached copy of {asked}: {why}."
            except (LocalEntryNotFoundError, FileNotFoundError, ValueError):
                return bundled(f"Using the bundled weights instead of {asked}: {why} and no cached copy exists.")
    weights = load_weights(folder, source={"kind": "hub", "repo": repo, "revision": wanted, "commit": folder.name})
    return Resolved(weights, notice)


def repo_exists(repo: str) -> bool:
    from huggingface_hub import HfApi
    try:
        HfApi().model_info(repo, revision="main")
        return True
    except Exception:
        return False


def is_offline(exc: Exception) -> bool:
    from huggingface_hub import constants
    return bool(constants.HF_HUB_OFFLINE) or "offline" in type(exc).__name__.lower()


def dataset_folder(source: str, split: str) -> tuple[Path, str]:
    """A Hub dataset repo `owner/name[@revision]` in MRNet's layout -> (local snapshot of one split, notice).
    Private repos (MRNet itself may never be public) need HF_TOKEN, which huggingface_hub reads. When the
    Hub cannot be reached, a cached snapshot is used and the notice says so."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError
    repo, revision = parse_source(source)
    wanted = revision or "main"
    patterns = [f"{split}/*/*.npy", f"{split}-*.csv", f"masks/{split}/*/*.npy"]

    def snapshot(local_only: bool) -> Path:
        return Path(snapshot_download(repo_id=repo, repo_type="dataset", revision=wanted, allow_patterns=patterns,
                                      local_files_only=local_only))
    try:
        return snapshot(local_only=False), ""
    except RevisionNotFoundError:
        raise MRNetError(f"The Hub dataset {repo} has no revision {wanted!r} (branch, tag or commit).") from None
    except RepositoryNotFoundError:
        raise MRNetError(f"The Hub dataset {repo} does not exist or is private (check the name and HF_TOKEN).") from None
    except network_errors() as exc:
        why = "offline mode is on (HF_HUB_OFFLINE=1)" if is_offline(exc) else "the Hub could not be reached"
        try:
            return snapshot(local_only=True), f"Using the cached copy of the dataset {source}: {why}."
        except (LocalEntryNotFoundError, FileNotFoundError, ValueError):
            raise MRNetError(f"The dataset {source} cannot be read: {why} and no cached copy exists.") from None
