"""Every setting read from the environment, in one place, read once (the README lists them).

`settings()` is cached: a process reads its environment at the first call. Tests that change the
environment call `settings.cache_clear()`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields
from functools import lru_cache

from mrnet.core.errors import MRNetError

BOOLEANS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False, "": False}


@dataclass(frozen=True)
class Settings:
    weights: str = ""               # MRNET_WEIGHTS: folder or owner/name[@revision]; empty: bundled weights/
    max_upload_mb: int = 200        # MRNET_MAX_UPLOAD_MB: per file (the app's upload limit too)
    max_unzipped_mb: int = 600      # MRNET_MAX_UNZIPPED_MB: what one zip may unpack to
    max_zip_members: int = 2000     # MRNET_MAX_ZIP_MEMBERS
    max_slices: int = 128           # MRNET_MAX_SLICES: per plane
    max_in_plane: int = 1024        # MRNET_MAX_IN_PLANE: pixels a side
    max_dicom_files: int = 1000     # MRNET_MAX_DICOM_FILES
    max_read_seconds: int = 60      # MRNET_MAX_READ_SECONDS: wall-clock cap on reading one exam
    sample_dir: str = ""            # MRNET_SAMPLE_DIR: where phantom samples are cached; empty: TMP/mrnet-samples
    concurrency: int = 2            # MRNET_CONCURRENCY: analyses at a time in the app
    share: bool = False             # MRNET_SHARE=1: ask Gradio for a public link
    auth: str = ""                  # MRNET_AUTH=user:password
    mcp: bool = False               # MRNET_MCP=1: also serve the analysis as an MCP server's tools (gradio's mcp)
    users: str = ""                 # MRNET_USERS=FILE: named reviewers, `name:hash` lines (python -m mrnet users add)
    data: str = ""                  # MRNET_DATA: a labelled set to browse (folder or Hub dataset owner/name[@rev])
    data_split: str = "valid"       # MRNET_DATA_SPLIT
    scores: str = ""                # MRNET_SCORES: that set's score file (python -m mrnet score ... --out FILE)
    flags: str = "data/flags.sqlite"  # MRNET_FLAGS: the reviewer flags' SQLite database
    compare: str = ""               # MRNET_COMPARE: second weights for the Cases view's compare mode (folder or
                                    # owner/name[@revision]); empty: the bundled pair with the bundled weights; none: off
    compare_scores: str = ""        # MRNET_COMPARE_SCORES: MRNET_DATA's score file made with MRNET_COMPARE's weights
    kept_analyses_mb: int = 96      # MRNET_KEPT_ANALYSES_MB: visitors' analyses kept for their zip and flags, all together
    max_zips_mb: int = 1024         # MRNET_MAX_ZIPS_MB: the prepared zips on disk, all together (one per session)
    share_days: int = 7             # MRNET_SHARE_DAYS: how long a shared upload is kept; 0: no sharing of uploads
    share_mb: int = 2000            # MRNET_SHARE_MB: the shared uploads' pixels on disk, all together
    shares: str = ""                # MRNET_SHARES: the shared uploads' folder; empty: `shares` beside MRNET_FLAGS

    @classmethod
    def from_env(cls, env=os.environ) -> "Settings":
        """A value that does not parse stops whoever reads it with one sentence (fail closed: a limit that was
        asked for is never silently replaced by the default)."""
        values: dict[str, object] = {}
        for f in fields(cls):
            name = f"MRNET_{f.name.upper()}"
            raw = env.get(name)
            if raw is None:
                continue
            if f.type == "bool":
                if raw.strip().lower() not in BOOLEANS:
                    raise MRNetError(f"{name}={raw[:40]!r} is not one of 1, 0, true, false, yes, no.")
                values[f.name] = BOOLEANS[raw.strip().lower()]
            elif f.type == "int":
                try:
                    number = int(raw)
                except ValueError:
                    raise MRNetError(f"{name}={raw[:40]!r} is not a whole number.") from None
                least = 1 if f.name == "concurrency" else 0  # no analysis slot at all would hang every request
                if number < least:
                    raise MRNetError(f"{name}={number} must be at least {least}.")
                values[f.name] = number
            else:
                values[f.name] = raw
        return cls(**values)  # type: ignore[arg-type]  # each value has its field's type, checked above


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings.from_env()
