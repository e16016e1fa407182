"""Reviewer flags: "is the CAM on the lesion?" for one view of one case, kept in SQLite.

Each flag is one INSERT in its own transaction; the database runs in WAL mode with a busy timeout, so
several app processes (or a CLI export) reading and writing at once wait for each other instead of losing
a flag. Only cases of a labelled set are flagged: they have stable ids that links and exports can name
(an upload has none, and its file name may identify a patient).
"""
from __future__ import annotations

import csv
import io
import sqlite3
import time
from contextlib import closing
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from mrnet.core.errors import MRNetError

VERDICTS = {"on": "CAM on the lesion", "off": "CAM off the lesion", "unsure": "unsure"}
SCHEMA = """CREATE TABLE IF NOT EXISTS flags (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    dataset TEXT NOT NULL, split TEXT NOT NULL, case_id TEXT NOT NULL, task TEXT NOT NULL,
    plane TEXT NOT NULL, slice INTEGER NOT NULL, method TEXT NOT NULL,
    verdict TEXT NOT NULL, comment TEXT NOT NULL, weights TEXT NOT NULL, created TEXT NOT NULL)"""
MAX_COMMENT = 2000


@dataclass
class Flag:
    dataset: str
    split: str
    case_id: str
    task: str
    plane: str
    slice: int
    method: str
    verdict: str
    comment: str
    weights: str        # the weights' Hub commit, or the digest of their config.json
    created: str = ""   # UTC, ISO 8601; set when stored


class FlagStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    def connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=30)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise MRNetError(f"The flag database {self.path} cannot be opened ({exc}).") from None
        return db

    def add(self, flag: Flag) -> Flag:
        if flag.verdict not in VERDICTS:
            raise MRNetError(f"A flag says one of: {', '.join(VERDICTS.values())}.")
        flag = Flag(**{**asdict(flag), "comment": flag.comment.strip()[:MAX_COMMENT],
                       "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        names = [f.name for f in fields(Flag)]
        with closing(self.connect()) as db, db:
            db.execute(f"INSERT INTO flags ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                       [getattr(flag, n) for n in names])
        return flag

    def list(self, dataset: str | None = None) -> list[Flag]:
        if not self.path.is_file():
            return []
        names = [f.name for f in fields(Flag)]
        query = f"SELECT {', '.join(names)} FROM flags" + (" WHERE dataset = ?" if dataset else "") + " ORDER BY id"
        with closing(self.connect()) as db:
            return [Flag(*row) for row in db.execute(query, [dataset] if dataset else [])]

    def csv(self) -> str:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=[f.name for f in fields(Flag)], lineterminator="\n")
        writer.writeheader()
        writer.writerows(asdict(f) for f in self.list())
        return buf.getvalue()
