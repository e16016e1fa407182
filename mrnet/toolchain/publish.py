"""`python -m mrnet publish DIR --repo owner/name`: validate a weights folder, regenerate its model card
from config.json, and upload it to the Hub with HfApi.upload_folder (`--dry-run` lists what would go up)."""
from __future__ import annotations

from pathlib import Path

from mrnet.core.errors import MRNetError
from mrnet.core.hub import WEIGHT_FILES, parse_source
from mrnet.core.weights import load_weights
from mrnet.toolchain.card import card_text, check_card


def files_to_upload(folder: Path) -> list[Path]:
    from fnmatch import fnmatch
    return sorted(f for f in folder.iterdir() if f.is_file() and any(fnmatch(f.name, pat) for pat in WEIGHT_FILES))


def run_publish(folder: Path, repo: str, revision: str | None = None, private: bool = False, dry_run: bool = False) -> dict:
    folder = Path(folder)
    parse_source(repo)  # a valid owner/name
    weights = load_weights(folder)  # strict keys and sha256
    card = card_text(weights.config)
    problems = check_card(card)
    if problems:
        raise MRNetError("The model card is not valid: " + "; ".join(problems) + ".")
    if not dry_run:
        (folder / "README.md").write_text(card)
    files = [{"file": f.name, "bytes": f.stat().st_size} for f in files_to_upload(folder) if f.name != "README.md"]
    files.append({"file": "README.md", "bytes": len(card.encode()), "note": "model card regenerated from config.json"})
    result = {"repo": repo, "revision": revision or "main", "private": private, "dry_run": dry_run, "files": files}
    if dry_run:
        return result
    from huggingface_hub import HfApi
    api = HfApi()
    api.create_repo(repo, repo_type="model", private=private, exist_ok=True)
    if revision:
        api.create_branch(repo, branch=revision, exist_ok=True)
    info = api.upload_folder(folder_path=str(folder), repo_id=repo, revision=revision, allow_patterns=WEIGHT_FILES,
                             commit_message="Upload MRNet weights (python -m mrnet publish)")
    result["commit"] = getattr(info, "oid", None)
    return result
