"""Reviewer flags: "is the CAM on the lesion?" for one view of one case, kept in SQLite.

Each flag is one INSERT in its own transaction; the database runs in WAL mode, so several app processes (or a
CLI export) reading and writing at once take turns. The page never waits long on it: a short busy timeout,
then one sentence ("flags are unavailable"), and only a bounded page of recent flags travels with a page load
or a save. The schema is versioned (`PRAGMA user_version`) and older databases are migrated in place.
Messages never show the server's path. Only what has a stable id that links and exports can name is flagged: a
labelled set's case, a sample (set and split "sample", its key) and a shared exam ("shared", its public id); an
upload that is not shared has none, and its file name may identify a patient. A flag may carry the reviewer's
lesion mark (a point or a box on the judged slice) and the pointing game against it.
"""
from __future__ import annotations

import builtins
import csv
import io
import sqlite3
import time
from contextlib import closing
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from mrnet.core.errors import MRNetError
from mrnet.core.text import CONTROL, visible_controls
from mrnet.sets.limits import RateLimit
from mrnet.sets.statistics import bootstrap_interval, cohen_kappas, fleiss_kappas, wilson_interval

VERDICTS = {"on": "CAM on the lesion", "off": "CAM off the lesion", "unsure": "unsure"}
CODES = {verdict: i for i, verdict in enumerate(VERDICTS)}  # a verdict's number in kappa's arrays
SCHEMA_VERSION = 7
SCHEMA = """CREATE TABLE IF NOT EXISTS flags (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    dataset TEXT NOT NULL, split TEXT NOT NULL, case_id TEXT NOT NULL, task TEXT NOT NULL,
    plane TEXT NOT NULL, slice INTEGER NOT NULL, method TEXT NOT NULL,
    verdict TEXT NOT NULL, comment TEXT NOT NULL, weights TEXT NOT NULL, created TEXT NOT NULL, pointing INTEGER,
    reviewer TEXT NOT NULL DEFAULT 'anonymous',
    mark_x INTEGER, mark_y INTEGER, mark_w INTEGER, mark_h INTEGER, mark_hit INTEGER, mark_on_lesion INTEGER,
    palette TEXT)"""
MARK_COLUMNS = ("mark_x", "mark_y", "mark_w", "mark_h", "mark_hit", "mark_on_lesion")
# the marked flags, read by the marks' summary alone (marks are few beside verdicts)
MARKED = ("CREATE INDEX IF NOT EXISTS flags_marked ON flags (weights, method, plane, mark_hit, mark_on_lesion) "
          "WHERE mark_hit IS NOT NULL")
MIN_SHARED = 10         # views both reviewers judged, below which no kappa is given
MAX_COMMENT = 1000      # characters; a longer comment is cut, and the save says so
PAGE = 50               # the most recent flags shown with a page load or a save
BUSY_MS = 2000          # how long one statement waits for another process's lock
# a spreadsheet runs a cell that starts with one of these as a formula (OWASP: CSV injection)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def valid(row: str = "") -> str:
    """SQL: the flag (`row`: "NEW." in a trigger) has content the app understands; older databases or other
    writers may hold anything."""
    # ORs, not IN (...): in a trigger SQLite builds an IN list's lookup table again for every row
    return (f"({row}verdict = 'on' OR {row}verdict = 'off' OR {row}verdict = 'unsure') AND " + " AND ".join(
        f"{row}{c} IS NOT NULL" for c in ("dataset", "split", "case_id", "task", "plane", "slice", "method", "comment",
                                          "weights", "created")))


VALID = valid()


def counted(row: str = "") -> list[str]:
    """SQL: flag_counts' columns for one flag; all flags that the app does not understand share one row."""
    ok = f"coalesce({valid(row)}, 0)"
    judged = f"{ok} AND {row}pointing IS NOT NULL AND ({row}verdict = 'on' OR {row}verdict = 'off')"
    return ([f"CASE WHEN {ok} THEN {row}{c} ELSE '' END" for c in ("weights", "task", "method", "verdict")]
            + [f"({ok})", "1", f"({judged})", f"({judged} AND (({row}verdict = 'on') = ({row}pointing != 0)))"])


def count_triggers(name: str, event: str, row: str, sign: str) -> list[str]:
    """Two triggers, for flags the app understands and for the others: each flag's validity is tested once."""
    ok = f"coalesce({valid(row)}, 0)"
    judged = f"{row}pointing IS NOT NULL AND ({row}verdict = 'on' OR {row}verdict = 'off')"
    understood = (f"{row}weights, {row}task, {row}method, {row}verdict, 1, 1, {judged}, "
                  f"{judged} AND (({row}verdict = 'on') = ({row}pointing != 0))")
    upsert = ("ON CONFLICT (weights, task, method, verdict, valid) DO UPDATE SET "
              f"n = n {sign} 1, pointing_n = pointing_n {sign} excluded.pointing_n, agree = agree {sign} excluded.agree")
    return [f"CREATE TRIGGER {name} AFTER {event} ON flags WHEN {ok} BEGIN "
            f"INSERT INTO flag_counts VALUES ({understood}) {upsert}; END",
            f"CREATE TRIGGER {name}_not_understood AFTER {event} ON flags WHEN NOT {ok} BEGIN "
            f"INSERT INTO flag_counts VALUES ('', '', '', '', 0, 1, 0, 0) {upsert}; END"]


# What the summary reads: counts per (weights, task, method, verdict), kept by triggers as flags come and go, so a
# page load reads a few rows however many flags there are.
COUNTS = ["CREATE TABLE flag_counts (weights TEXT NOT NULL, task TEXT NOT NULL, method TEXT NOT NULL, "
          "verdict TEXT NOT NULL, valid INTEGER NOT NULL, n INTEGER NOT NULL, pointing_n INTEGER NOT NULL, "
          "agree INTEGER NOT NULL, PRIMARY KEY (weights, task, method, verdict, valid))",
          *count_triggers("flags_counted", "INSERT", "NEW.", "+"),
          *count_triggers("flags_uncounted", "DELETE", "OLD.", "-")]

# What the agreement reads: each reviewer's latest verdict per view (flag_views), how many reviewers judged each
# view (view_reviewers; a partial index finds the views of two or more) and each reviewer's verdict counts
# (reviewer_counts), all kept by triggers. So agreement reads the shared views and a few counts, not every flag.
VIEW = ("weights", "task", "method", "dataset", "case_id", "plane", "slice")
VIEW_KEY = ", ".join(VIEW)


def same_view(row: str, other: str = "", columns=VIEW) -> str:
    return " AND ".join(f"{other}{c} = {row}{c}" for c in columns)


def tally(table: str, key: tuple[str, ...], row: str, sign: str) -> str:
    """SQL: add (`sign` '+') or take away one from `table`'s count n for the key's values in `row`."""
    return (f"INSERT INTO {table} VALUES ({', '.join(row + c for c in key)}, {sign}1) ON CONFLICT "
            f"({', '.join(key)}) DO UPDATE SET n = n {sign} 1;")


REVIEWER_COUNT = ("weights", "task", "method", "reviewer", "verdict")
LATEST = (f"SELECT {VIEW_KEY}, reviewer, verdict, id FROM flags WHERE {VALID} AND reviewer IS NOT NULL")
VIEWS = [
    f"CREATE TABLE flag_views ({VIEW_KEY}, reviewer, verdict, id INTEGER, PRIMARY KEY ({VIEW_KEY}, reviewer))"
    " WITHOUT ROWID",
    f"CREATE TABLE view_reviewers ({VIEW_KEY}, n INTEGER NOT NULL, PRIMARY KEY ({VIEW_KEY})) WITHOUT ROWID",
    "CREATE INDEX view_reviewers_shared ON view_reviewers (n) WHERE n > 1",
    f"CREATE TABLE reviewer_counts ({', '.join(REVIEWER_COUNT)}, n INTEGER NOT NULL, "
    f"PRIMARY KEY ({', '.join(REVIEWER_COUNT)})) WITHOUT ROWID",
    # the flags of one view and reviewer, newest first, when one of them is deleted
    f"CREATE INDEX flags_by_view ON flags ({VIEW_KEY}, reviewer, id)",
    "CREATE TRIGGER view_added AFTER INSERT ON flag_views BEGIN "
    + tally("view_reviewers", VIEW, "NEW.", "+") + tally("reviewer_counts", REVIEWER_COUNT, "NEW.", "+") + " END",
    "CREATE TRIGGER view_changed AFTER UPDATE OF verdict ON flag_views BEGIN "
    + tally("reviewer_counts", REVIEWER_COUNT, "OLD.", "-") + tally("reviewer_counts", REVIEWER_COUNT, "NEW.", "+")
    + " END",
    "CREATE TRIGGER view_removed AFTER DELETE ON flag_views BEGIN "
    + tally("view_reviewers", VIEW, "OLD.", "-") + tally("reviewer_counts", REVIEWER_COUNT, "OLD.", "-") + " END",
    # a newer flag of a view replaces its reviewer's verdict
    f"CREATE TRIGGER flags_viewed AFTER INSERT ON flags WHEN {valid('NEW.')} AND NEW.reviewer IS NOT NULL BEGIN "
    f"INSERT INTO flag_views VALUES ({', '.join('NEW.' + c for c in VIEW)}, NEW.reviewer, NEW.verdict, NEW.id) "
    f"ON CONFLICT ({VIEW_KEY}, reviewer) DO UPDATE SET verdict = excluded.verdict, id = excluded.id "
    f"WHERE excluded.id > flag_views.id; END",
    # a deleted flag that was its reviewer's latest for the view gives way to the one before it, if any
    f"CREATE TRIGGER flags_unviewed AFTER DELETE ON flags BEGIN "
    f"DELETE FROM flag_views WHERE id = OLD.id AND {same_view('OLD.')} AND reviewer = OLD.reviewer; "
    f"INSERT INTO flag_views {LATEST} AND {same_view('OLD.')} AND reviewer = OLD.reviewer ORDER BY id DESC LIMIT 1 "
    f"ON CONFLICT DO NOTHING; END",
]


SAVES_PER_MINUTE_PER_ADDRESS = 10
SAVES_PER_MINUTE = 120  # all visitors together


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
    reviewer: str = "anonymous"  # the logged-in reviewer's name (MRNET_USERS, MRNET_AUTH); "anonymous" without one
    # the reviewer's lesion mark on the flagged slice, in exam pixels: a point (w = h = 0) or a box; None without
    mark_x: int | None = None
    mark_y: int | None = None
    mark_w: int | None = None
    mark_h: int | None = None
    mark_hit: int | None = None        # the pointing game against the mark: 1 if the judged map's maximum is on it
    mark_on_lesion: int | None = None  # on a set with masks: 1 if the mark touches the lesion; else None
    palette: str | None = None         # the maps' colours the reviewer saw (config.PALETTES); None before version 7


def migrate(db: sqlite3.Connection) -> None:
    """Bring a database of any earlier schema to SCHEMA_VERSION. Version 0 or 1 lacked `split` (flags were
    then always of the validation split); version 2 lacked `pointing` (unknown for its flags: NULL); version 6
    lacked lesion marks (NULL: none) and the palette (NULL: unknown)."""
    if db.execute("PRAGMA user_version").fetchone()[0] >= SCHEMA_VERSION:
        return
    # one process migrates at a time: the write lock first (waiting up to the busy timeout), then the version
    # read again, since another process may have migrated meanwhile (the steps below are not all idempotent)
    db.execute("BEGIN IMMEDIATE")
    if db.execute("PRAGMA user_version").fetchone()[0] >= SCHEMA_VERSION:
        return
    db.execute(SCHEMA)
    columns = {row[1] for row in db.execute("PRAGMA table_info(flags)")}
    if "split" not in columns:
        db.execute("ALTER TABLE flags ADD COLUMN split TEXT NOT NULL DEFAULT 'valid'")
    if "pointing" not in columns:
        db.execute("ALTER TABLE flags ADD COLUMN pointing INTEGER")
    if "reviewer" not in columns:  # version 4 and before: flags of an anonymous reviewer
        db.execute("ALTER TABLE flags ADD COLUMN reviewer TEXT NOT NULL DEFAULT 'anonymous'")
    for column in MARK_COLUMNS:    # version 6 and before: no lesion marks, no palette
        if column not in columns:
            db.execute(f"ALTER TABLE flags ADD COLUMN {column} INTEGER")
    if "palette" not in columns:
        db.execute("ALTER TABLE flags ADD COLUMN palette TEXT")
    db.execute(MARKED)
    # version 3 lacked the counts: made from the flags there, once
    for old in ("TRIGGER IF EXISTS flags_counted", "TRIGGER IF EXISTS flags_uncounted",
                "TRIGGER IF EXISTS flags_counted_not_understood", "TRIGGER IF EXISTS flags_uncounted_not_understood",
                "TABLE IF EXISTS flag_counts"):
        db.execute(f"DROP {old}")
    for statement in COUNTS:
        db.execute(statement)
    each = ", ".join(f"{expression} AS c{i}" for i, expression in enumerate(counted()))
    db.execute(f"INSERT INTO flag_counts SELECT c0, c1, c2, c3, c4, COUNT(*), SUM(c6), SUM(c7) FROM "
               f"(SELECT {each} FROM flags) GROUP BY c0, c1, c2, c3, c4")
    # version 5 lacked the views: made from the flags there, once (the triggers count them as they go in)
    for old in ("TRIGGER IF EXISTS flags_viewed", "TRIGGER IF EXISTS flags_unviewed", "TABLE IF EXISTS flag_views",
                "TABLE IF EXISTS view_reviewers", "TABLE IF EXISTS reviewer_counts", "INDEX IF EXISTS flags_by_view"):
        db.execute(f"DROP {old}")
    for statement in VIEWS:
        db.execute(statement)
    db.execute(f"INSERT INTO flag_views SELECT {VIEW_KEY}, reviewer, verdict, id FROM (SELECT *, ROW_NUMBER() OVER "
               f"(PARTITION BY {VIEW_KEY}, reviewer ORDER BY id DESC) AS newest FROM ({LATEST})) WHERE newest = 1")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


class FlagStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._agreement: tuple | None = None  # ((max id, flags counted), agreement): again after a change

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
        flag = Flag(**{**asdict(flag), "comment": without_controls(flag.comment).strip()[:MAX_COMMENT],
                       "reviewer": without_controls(str(flag.reviewer or "anonymous")).strip()[:64] or "anonymous",
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
        where = f" WHERE {VALID}" + (" AND dataset = ?" if dataset else "")
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


    def summary(self) -> tuple[builtins.list[dict], int]:
        """What reviewers said, per (weights, task, method): n flags, how many judged the CAM on the lesion,
        off it or were unsure, and the share on the lesion with its Wilson 95 % interval. Where the set has
        lesion masks, also how often an "on" or "off" verdict agrees with the pointing game on the slice judged
        (`pointing_n` such flags, `agree` of them; the share with its Wilson interval, None without any).
        Read from the counts that SQLite keeps (a page load reads a few rows, however many flags there are), with
        the number of flags skipped because their content is not understood (an unknown verdict, a missing value)."""
        if not self.path.is_file():
            return [], 0
        with closing(self.connect()) as db:
            try:
                counts = db.execute("SELECT weights, task, method, verdict, valid, n, pointing_n, agree FROM flag_counts "
                                    "WHERE n > 0").fetchall()
            except sqlite3.Error:
                raise MRNetError("Flags are unavailable right now: their database is busy or damaged.") from None
        groups: dict[tuple[str, str, str], dict] = {}
        skipped = 0
        for weights, task, method, verdict, understood, n, pointing_n, agree in counts:
            if not understood:  # the counts of every flag the app does not understand share one row
                skipped += n
                continue
            row = groups.setdefault((str(weights), str(task), str(method)), {
                "weights": str(weights), "task": str(task), "method": str(method), "n": 0, "on": 0, "off": 0,
                "unsure": 0, "pointing_n": 0, "agree": 0})
            row["n"] += n
            row[verdict] += n
            row["pointing_n"] += pointing_n or 0
            row["agree"] += agree or 0
        for row in groups.values():
            row["share_on"] = row["on"] / row["n"]
            row["share_on_low"], row["share_on_high"] = wilson_interval(row["on"], row["n"])
            row["agreement"] = row["agree"] / row["pointing_n"] if row["pointing_n"] else None
            row["agreement_low"], row["agreement_high"] = (wilson_interval(row["agree"], row["pointing_n"])
                                                           if row["pointing_n"] else (None, None))
        return [groups[key] for key in sorted(groups)], skipped


    def marks(self) -> builtins.list[dict]:
        """The pointing game against reviewers' marks, per (weights, method, plane): n marked flags, `hits` whose
        judged map's maximum was on the mark (within the tolerance), the share with its Wilson 95 % interval; and
        on sets with masks, how many marks touched the lesion (`on_lesion` of `with_mask`: the reviewers' own
        accuracy). Read through the marked flags' index."""
        if not self.path.is_file():
            return []
        with closing(self.connect()) as db:
            try:
                rows = db.execute(
                    "SELECT weights, method, plane, COUNT(*), SUM(mark_hit = 1), COUNT(mark_on_lesion), "
                    "SUM(mark_on_lesion = 1) FROM flags WHERE mark_hit IS NOT NULL AND mark_hit IN (0, 1) AND weights "
                    "IS NOT NULL AND method IS NOT NULL AND plane IS NOT NULL GROUP BY weights, method, plane").fetchall()
            except sqlite3.Error:
                raise MRNetError("Flags are unavailable right now: their database is busy or damaged.") from None
        found = []
        for weights, method, plane, n, hits, with_mask, on_lesion in rows:
            low, high = wilson_interval(hits or 0, n)
            found.append({"weights": str(weights), "method": str(method), "plane": str(plane), "n": n,
                          "hits": hits or 0, "share": (hits or 0) / n, "low": low, "high": high,
                          "with_mask": with_mask, "on_lesion": on_lesion or 0})
        return sorted(found, key=lambda row: (row["weights"], row["method"], row["plane"]))

    def agreement(self) -> builtins.list[dict]:
        """Per (weights, task, method): each reviewer's counts of verdicts, Cohen's kappa for each pair of
        reviewers on the views both judged, and Fleiss' kappa over the views every reviewer judged, each with a
        95 % bootstrap interval and the number of shared views (fewer than MIN_SHARED: a note instead of a
        number). A view is (set, case, task, plane, slice, method, weights); a reviewer who judged it twice
        counts with the latest verdict. Read from the tables SQLite keeps (the views two or more reviewers judged,
        and counts), and computed again only after the flags changed."""
        if not self.path.is_file():
            return []
        with closing(self.connect()) as db:
            try:
                version = db.execute("SELECT (SELECT MAX(id) FROM flags), (SELECT SUM(n) FROM flag_counts)").fetchone()
                if self._agreement is not None and self._agreement[0] == version:
                    return self._agreement[1]
                counted = db.execute("SELECT weights, task, method, reviewer, verdict, n FROM reviewer_counts "
                                     "WHERE n > 0").fetchall()
                shared = db.execute(f"SELECT {', '.join('v.' + c for c in VIEW)}, v.reviewer, v.verdict FROM "
                                    f"view_reviewers AS s JOIN flag_views AS v ON {same_view('s.', 'v.')} "
                                    "WHERE s.n > 1").fetchall()
            except sqlite3.Error:
                raise MRNetError("Flags are unavailable right now: their database is busy or damaged.") from None
        counts: dict[tuple, dict[str, dict[str, int]]] = {}
        for weights, task, method, reviewer, verdict, n in counted:
            counts.setdefault((weights, task, method), {}).setdefault(reviewer, dict.fromkeys(VERDICTS, 0))[verdict] = n
        views: dict[tuple, dict[tuple, dict[str, str]]] = {}
        for weights, task, method, dataset, case, plane, index, reviewer, verdict in shared:
            views.setdefault((weights, task, method), {}).setdefault((dataset, case, plane, index), {})[reviewer] = verdict
        result = [agreement_of(key, views.get(key, {}), counts[key]) for key in sorted(counts)]
        self._agreement = (version, result)
        return result


def agreement_of(key: tuple, views: dict[tuple, dict[str, str]], counts: dict[str, dict[str, int]]) -> dict:
    """One (weights, task, method)'s agreement from the views that two or more reviewers judged (`views`: each
    view's latest verdict per reviewer) and every reviewer's verdict counts."""
    weights, task, method = key
    reviewers = sorted(counts)
    # in one order whatever order SQLite gives: the bootstrap's intervals depend on it
    views = {view: views[view] for view in sorted(views, key=lambda view: tuple(map(str, view)))}
    pairs = []
    for i, a in enumerate(reviewers):
        for b in reviewers[i + 1:]:
            shared = [(judged[a], judged[b]) for judged in views.values() if a in judged and b in judged]
            pair: dict = {"a": a, "b": b, "n": len(shared)}
            if len(shared) >= MIN_SHARED:
                xs, ys = (np.array([CODES[pair[i]] for pair in shared]) for i in (0, 1))
                pair["kappa"] = float(cohen_kappas(xs, ys, len(CODES), np.ones((1, len(shared))))[0])
                pair["low"], pair["high"] = bootstrap_interval(
                    lambda draws: cohen_kappas(xs, ys, len(CODES), draws), len(shared))
            pairs.append(pair)
    everyone = [judged for judged in views.values() if len(reviewers) > 1 and all(r in judged for r in reviewers)]
    fleiss: dict = {"n": len(everyone), "reviewers": len(reviewers)}
    if len(reviewers) > 1 and len(everyone) >= MIN_SHARED:
        table = np.array([[sum(1 for v in judged.values() if v == c) for c in VERDICTS] for judged in everyone], float)
        fleiss["kappa"] = float(fleiss_kappas(table, np.ones((1, len(table))))[0])
        fleiss["low"], fleiss["high"] = bootstrap_interval(lambda draws: fleiss_kappas(table, draws), len(table))
    return {"weights": weights, "task": task, "method": method, "reviewers": counts, "pairs": pairs, "fleiss": fleiss}


def agreement_sentence(pair_or_fleiss: dict) -> str:
    """'0.62 [0.41, 0.80] on 25 views', or why there is no number."""
    if "kappa" not in pair_or_fleiss:
        return f"{pair_or_fleiss['n']} shared views: fewer than {MIN_SHARED}, no kappa"
    return (f"{pair_or_fleiss['kappa']:.2f} [{pair_or_fleiss['low']:.2f}, {pair_or_fleiss['high']:.2f}] on "
            f"{pair_or_fleiss['n']} views")


def without_controls(text: str) -> str:
    return CONTROL.sub("", text)


def skipped_sentence(skipped: int) -> str:
    return (f"{skipped} flag{'s' if skipped != 1 else ''} in the database {'are' if skipped != 1 else 'is'} not "
            "counted: an unknown verdict or a missing value." if skipped else "")


def inert(value):
    """A cell as a spreadsheet and a terminal may read it: no formula, and control characters (other than the
    newline, which CSV quotes) written as visible escapes."""
    if not isinstance(value, str):
        return value
    value = visible_controls(value)
    return "'" + value if value.startswith(FORMULA_START) else value


class SaveLimit(RateLimit):
    """At most `count` saves per `seconds` from one client address, and `total` from everyone: a flood of flags
    is refused with a sentence, and no visitor can fill the database for the others."""

    def __init__(self, count: int = SAVES_PER_MINUTE_PER_ADDRESS, seconds: float = 60, total: int = SAVES_PER_MINUTE):
        super().__init__(count, seconds, f"At most {count} flags a minute can be saved from one address; wait a moment.",
                         total, "Reviewers are saving many flags right now; wait a moment and save again.")
