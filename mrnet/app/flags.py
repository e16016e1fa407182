"""Reviewer flags: "is the CAM on the lesion?" for one view of one case, kept in SQLite.

Each flag is one INSERT in its own transaction; the database runs in WAL mode, so several app processes (or a
CLI export) reading and writing at once take turns. The page never waits long on it: a short busy timeout,
then one sentence ("flags are unavailable"), and only a bounded page of recent flags travels with a page load
or a save. The schema is versioned (`PRAGMA user_version`) and older databases are migrated in place.
Messages never show the server's path. Only cases of a labelled set are flagged: they have stable ids that
links and exports can name (an upload has none, and its file name may identify a patient).
"""
from __future__ import annotations

import builtins
import csv
import io
import sqlite3
import threading
import time
from collections import defaultdict, deque
from contextlib import closing
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from mrnet.app.statistics import wilson_interval
from mrnet.core.errors import MRNetError

VERDICTS = {"on": "CAM on the lesion", "off": "CAM off the lesion", "unsure": "unsure"}
SCHEMA_VERSION = 3
SCHEMA = """CREATE TABLE IF NOT EXISTS flags (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    dataset TEXT NOT NULL, split TEXT NOT NULL, case_id TEXT NOT NULL, task TEXT NOT NULL,
    plane TEXT NOT NULL, slice INTEGER NOT NULL, method TEXT NOT NULL,
    verdict TEXT NOT NULL, comment TEXT NOT NULL, weights TEXT NOT NULL, created TEXT NOT NULL, pointing INTEGER)"""
MAX_COMMENT = 1000      # characters; a longer comment is cut, and the save says so
PAGE = 50               # the most recent flags shown with a page load or a save
BUSY_MS = 2000          # how long one statement waits for another process's lock
# a spreadsheet runs a cell that starts with one of these as a formula (OWASP: CSV injection)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


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
    pointing: int | None = None  # on a set with lesion masks: 1 if the judged map's maximum is on the lesion
                                 # (the pointing game, core.pointing), else 0; None without masks


def migrate(db: sqlite3.Connection) -> None:
    """Bring a database of any earlier schema to SCHEMA_VERSION. Version 0 or 1 lacked `split` (flags were
    then always of the validation split); version 2 lacked `pointing` (unknown for its flags: NULL)."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version >= SCHEMA_VERSION:
        return
    db.execute(SCHEMA)
    columns = {row[1] for row in db.execute("PRAGMA table_info(flags)")}
    if "split" not in columns:
        db.execute("ALTER TABLE flags ADD COLUMN split TEXT NOT NULL DEFAULT 'valid'")
    if "pointing" not in columns:
        db.execute("ALTER TABLE flags ADD COLUMN pointing INTEGER")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


class FlagStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    def connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=BUSY_MS / 1000)
            db.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
            db.execute("PRAGMA journal_mode=WAL")
            with db:
                migrate(db)
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise MRNetError("Flags are unavailable right now: their database is busy. Try again shortly.") from None
            raise MRNetError("Flags are unavailable: their database cannot be opened (ask the app's operator).") from None
        except (OSError, sqlite3.Error):
            raise MRNetError("Flags are unavailable: their database cannot be opened (ask the app's operator).") from None
        return db

    def add(self, flag: Flag) -> Flag:
        if flag.verdict not in VERDICTS:
            raise MRNetError(f"A flag says one of: {', '.join(VERDICTS.values())}.")
        flag = Flag(**{**asdict(flag), "comment": flag.comment.strip()[:MAX_COMMENT],
                       "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        names = [f.name for f in fields(Flag)]
        with closing(self.connect()) as db:
            try:
                with db:
                    db.execute(f"INSERT INTO flags ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                               [getattr(flag, n) for n in names])
            except sqlite3.Error:
                raise MRNetError("The flag could not be saved: its database is busy or damaged. Try again shortly.") from None
        return flag

    def list(self, dataset: str | None = None, limit: int | None = None) -> list[Flag]:
        """Flags in the order they were saved; with `limit`, only the most recent `limit` of them."""
        if not self.path.is_file():
            return []
        names = [f.name for f in fields(Flag)]
        where = " WHERE dataset = ?" if dataset else ""
        query = (f"SELECT {', '.join(names)} FROM (SELECT * FROM flags{where} ORDER BY id DESC"
                 + (f" LIMIT {int(limit)}" if limit else "") + ") ORDER BY id")
        with closing(self.connect()) as db:
            try:
                return [Flag(*row) for row in db.execute(query, [dataset] if dataset else [])]
            except sqlite3.Error:
                raise MRNetError("Flags are unavailable right now: their database is busy or damaged.") from None

    def csv(self) -> tuple[str, int]:
        """Every flag as CSV for a spreadsheet (cells that would start a formula are prefixed with '), and
        the number of flags."""
        flags = self.list()
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=[f.name for f in fields(Flag)], lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: inert(v) for k, v in asdict(f).items()} for f in flags)
        return buf.getvalue(), len(flags)


    def summary(self) -> builtins.list[dict]:
        """What reviewers said, per (weights, task, method): n flags, how many judged the CAM on the lesion,
        off it or were unsure, and the share on the lesion with its Wilson 95 % interval. Where the set has
        lesion masks, also how often an "on" or "off" verdict agrees with the pointing game on the slice judged
        (`pointing_n` such flags, `agree` of them; the share with its Wilson interval, None without any)."""
        groups: dict[tuple[str, str, str], dict] = {}
        for flag in self.list():
            row = groups.setdefault((flag.weights, flag.task, flag.method), {
                "weights": flag.weights, "task": flag.task, "method": flag.method, "n": 0, "on": 0, "off": 0,
                "unsure": 0, "pointing_n": 0, "agree": 0})
            row["n"] += 1
            row[flag.verdict] += 1
            if flag.pointing is not None and flag.verdict in ("on", "off"):
                row["pointing_n"] += 1
                row["agree"] += int((flag.verdict == "on") == bool(flag.pointing))
        for row in groups.values():
            row["share_on"] = row["on"] / row["n"]
            row["share_on_low"], row["share_on_high"] = wilson_interval(row["on"], row["n"])
            row["agreement"] = row["agree"] / row["pointing_n"] if row["pointing_n"] else None
            row["agreement_low"], row["agreement_high"] = (wilson_interval(row["agree"], row["pointing_n"])
                                                           if row["pointing_n"] else (None, None))
        return [groups[key] for key in sorted(groups)]


def inert(value):
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_START) else value


class SaveLimit:
    """At most `count` saves per `seconds` for one visitor's session (a flood of flags is refused with a
    sentence, and no visitor can fill the database for the others)."""

    def __init__(self, count: int = 10, seconds: float = 60):
        self.count, self.seconds = count, seconds
        self.saves: dict[str, deque] = defaultdict(deque)
        self.lock = threading.Lock()

    def check(self, session: str) -> None:
        now = time.monotonic()
        with self.lock:
            recent = self.saves[session]
            while recent and now - recent[0] > self.seconds:
                recent.popleft()
            if len(recent) >= self.count:
                raise MRNetError(f"At most {self.count} flags a minute can be saved from one page; wait a moment.")
            recent.append(now)
