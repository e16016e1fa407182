"""Hostile inputs, round 3 (issue 24): views and link parameters of any shape, and a flag database that never
takes the page down (older schema, held lock, corrupt file, formula cells, floods)."""
import csv
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

from mrnet.app.view import View, parse_index
from mrnet.core.errors import MRNetError
from mrnet.sets.flags import BUSY_MS, PAGE, SCHEMA_VERSION, VERDICTS, Flag, FlagStore, SaveLimit, agreement_of

from helpers import CallsAnalyzer, mrnet_cli


@pytest.fixture(scope="module")
def analysis(random_weights):
    from mrnet.core.analysis import analyze
    from mrnet.core.compute import compute_for
    from mrnet.core.exam import Exam
    from mrnet.core.weights import load_weights
    rng = np.random.default_rng(0)
    exam = Exam(volumes={p: rng.integers(0, 255, (6, 256, 256), dtype=np.uint8) for p in ("coronal", "sagittal")})
    return analyze(exam, load_weights(random_weights), compute_for("cpu", "fp32"))


@pytest.mark.parametrize("raw", [None, [], "view", 7, {"task": ["acl"]}, {"task": "nope", "method": {"a": 1}},
                                 {"opacity": "0.5"}, {"opacity": float("nan")}, {"opacity": True},
                                 {"slices": {"sagittal": True, "coronal": 99}}, {"slices": [1, 2]},
                                 {"plane": "axial"}, {"mode": None}])
def test_any_value_gives_a_valid_view_with_defaults(analysis, raw):
    view = View.of(raw, analysis)
    default = View.of(None, analysis)
    assert view.task in analysis.tasks and view.method == default.method and view.mode == "overlay"
    assert view.opacity == default.opacity and view.plane in analysis.tasks[view.task].planes
    assert view.slices == {p: r.top_slice for p, r in analysis.tasks[view.task].planes.items()}


def test_a_valid_view_is_kept_as_asked(analysis):
    asked = {"task": "acl", "method": "classic", "opacity": 0.7, "mode": "swipe", "plane": "coronal",
             "slices": {"coronal": 2, "sagittal": 5}, "maps": "b",
             "mark": {"plane": "coronal", "slice": 2, "x": 5, "y": 6, "w": 0, "h": 0}, "palette": "viridis"}
    assert View.of(asked, analysis).to_dict() == asked
    assert View.of({**asked, "palette": "rainbow"}, analysis).palette == "jet"
    assert View.of({**asked, "opacity": 3}, analysis).opacity == 1.0
    assert View.of({**asked, "maps": "c"}, analysis).maps == "a"  # A's maps unless B's or the A | B swipe are named


@pytest.mark.parametrize("text, index", [("12", 12), ("²", None), ("9" * 5000, None), ("-1", None), ("", None),
                                         (" 3", None), (["3"], None), ("٣", None)])
def test_link_slices_that_do_not_parse_are_ignored(analysis, text, index):
    assert parse_index(text) == index
    view, ignored = View.from_link({"plane": "sagittal", "slice": text, "task": "acl"}, analysis)
    expected = index if index is not None and index < 6 else analysis.tasks["acl"].planes["sagittal"].top_slice
    assert view.slices["sagittal"] == expected and view.plane == "sagittal"
    assert ignored == ([] if index is not None and index < 6 else ["slice"])


def test_a_case_of_the_wrong_type_or_size_is_one_short_sentence():
    from mrnet.app.browse import CaseBrowser
    from mrnet.sets.cases import CaseSet
    cases = CaseSet(name="s", title="Set", split="valid", ids=["0001"], labels={}, load_exam=None, fingerprint=str)
    browser = CaseBrowser({"s": type("Item", (), {"cases": cases})()}, CallsAnalyzer(None))
    for asked, words in ((["0001"], "of type list"), ({"a": 1}, "of type dict"), ("x" * 1_000_000, "'xxxx")):
        with pytest.raises(MRNetError) as err:
            browser.check("s", asked)
        assert words in str(err.value) and len(str(err.value)) < 120
    with pytest.raises(MRNetError, match="no labelled set called of type list"):
        browser.check(["s"], "0001")


def test_a_kept_case_gives_the_masks_it_read_without_reading_them_again(analysis):
    """Saving a flag scores the pointing game on the case's masks: a case still kept by the browser gives those
    its preparation read (a phantom set would regenerate the whole exam to read them again)."""
    from mrnet.app.browse import CaseBrowser
    from mrnet.sets.cases import CaseSet
    reads = []

    def load_masks(case):
        reads.append(case)
        return {p: np.full(v.shape, 2, np.uint8) for p, v in analysis.exam.volumes.items()}
    cases = CaseSet(name="s", title="Set", split="valid", ids=["0001", "0002"], labels={}, fingerprint=str,
                    load_exam=lambda case: analysis.exam, load_masks=load_masks, has_masks=True)
    browser = CaseBrowser({"s": type("Item", (), {"cases": cases})()}, CallsAnalyzer(lambda exam: analysis))
    opened = browser.open("s", "0001")
    assert reads == ["0001"] and set(opened.payload["masks"]) == set(analysis.exam.volumes)
    assert browser.masks("s", "0001") is opened.masks and reads == ["0001"]
    assert set(browser.masks("s", "0002")) == set(analysis.exam.volumes) and reads == ["0001", "0002"]  # not kept


def flag(i=0, comment="", **kw):
    return Flag(**{"dataset": "phantom", "split": "valid", "case_id": f"{i:04d}", "task": "acl", "plane": "sagittal",
                   "slice": i, "method": "shapley", "verdict": "on", "comment": comment, "weights": "abc", **kw})


def test_an_older_schema_is_migrated_in_place(tmp_path):
    db = tmp_path / "flags.sqlite"
    with sqlite3.connect(db) as old:  # the first schema: no split column, no user_version
        old.execute("CREATE TABLE flags (id INTEGER PRIMARY KEY AUTOINCREMENT, dataset TEXT NOT NULL, "
                    "case_id TEXT NOT NULL, task TEXT NOT NULL, plane TEXT NOT NULL, slice INTEGER NOT NULL, "
                    "method TEXT NOT NULL, verdict TEXT NOT NULL, comment TEXT NOT NULL, weights TEXT NOT NULL, "
                    "created TEXT NOT NULL)")
        old.execute("INSERT INTO flags (dataset, case_id, task, plane, slice, method, verdict, comment, weights, "
                    "created) VALUES ('phantom', '0003', 'acl', 'axial', 4, 'exact', 'off', 'old', 'w', 'then')")
    store = FlagStore(db)
    assert [(f.case_id, f.split, f.comment, f.pointing) for f in store.list()] == [("0003", "valid", "old", None)]
    store.add(flag(7, pointing=1))
    assert [f.pointing for f in store.list()] == [None, 1]  # unknown for the old flag, kept for the new one
    with sqlite3.connect(db) as again:
        assert again.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


@pytest.mark.parametrize("journal", ["wal", "delete"])
def test_a_held_lock_gives_a_sentence_soon_and_the_store_works_after(tmp_path, journal):
    """Another process holds the write lock: in WAL mode (ours) the page still reads its flags and a save says
    the database is busy; a database in rollback mode (another tool's) says so for reads too."""
    db = tmp_path / "flags.sqlite"
    FlagStore(db).add(flag(1))
    with sqlite3.connect(db) as other:
        other.execute(f"PRAGMA journal_mode={journal}")
    holder = subprocess.Popen([sys.executable, "-c", "import sqlite3, sys, time; db = sqlite3.connect(sys.argv[1]); "
                               "db.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(60)", str(db)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        if journal == "wal":
            assert len(FlagStore(db).list()) == 1
        else:
            with pytest.raises(MRNetError, match="busy") as err:
                FlagStore(db).list()
            assert str(tmp_path) not in str(err.value)
        with pytest.raises(MRNetError, match="busy") as err:
            FlagStore(db).add(flag(2))
        assert str(tmp_path) not in str(err.value)
    finally:
        holder.kill()
        holder.wait()
    with FlagStore(db).connect() as db_:
        assert db_.execute("PRAGMA busy_timeout").fetchone()[0] == BUSY_MS  # seconds at most, never 30
    assert len(FlagStore(db).list()) == 1


def test_a_corrupt_database_is_a_sentence_without_the_servers_path(tmp_path):
    db = tmp_path / "secret-folder" / "flags.sqlite"
    db.parent.mkdir()
    db.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 40)
    for call in (lambda: FlagStore(db).list(), lambda: FlagStore(db).add(flag())):
        with pytest.raises(MRNetError) as err:
            call()
        assert "secret-folder" not in str(err.value) and "unavailable" in str(err.value)


def test_the_export_neutralises_formulas_counts_rows_and_refuses_in_one_sentence(tmp_path):
    db = tmp_path / "flags.sqlite"
    store = FlagStore(db)
    comments = ['=HYPERLINK("http://x","y")', "+cmd|' /C calc'!A0", "@SUM(1+1)", "-2+3", "line one\nline two", "fine"]
    for i, comment in enumerate(comments):
        store.add(flag(i, comment))
    out = tmp_path / "flags.csv"
    run = mrnet_cli("flags", "export", "--out", out, "--db", db)
    assert run.returncode == 0 and run.stderr.strip() == f"wrote 6 flags to {out}"
    rows = list(csv.DictReader(out.open(newline="")))
    assert [r["comment"] for r in rows] == ["'" + c for c in comments[:4]] + comments[4:]
    missing = mrnet_cli("flags", "export", "--out", out, "--db", tmp_path / "none.sqlite")
    assert missing.returncode == 2 and missing.stderr.startswith("error: There is no flag database")
    unwritable = mrnet_cli("flags", "export", "--out", tmp_path / "no" / "such" / "dir.csv", "--db", db)
    assert unwritable.returncode == 2 and unwritable.stderr.count("\n") == 1 and "cannot be written" in unwritable.stderr


def test_saves_are_limited_per_session_and_pages_are_bounded(tmp_path):
    limit = SaveLimit(count=10, seconds=60)
    for _ in range(10):
        limit.check("a")
    with pytest.raises(MRNetError, match="At most 10 flags a minute"):
        limit.check("a")
    limit.check("b")  # another visitor is not held back
    store = FlagStore(tmp_path / "flags.sqlite")
    for i in range(PAGE + 15):
        store.add(flag(i, "x" * 5000 if i == 0 else ""))
    recent = store.list(limit=PAGE)
    assert [f.case_id for f in recent] == [f"{i:04d}" for i in range(15, PAGE + 15)]
    assert len(store.list()[0].comment) == 1000


def test_the_flag_database_is_never_slower_than_its_busy_timeout(tmp_path):
    """The page load's read returns within the busy timeout even while another process writes."""
    db = tmp_path / "flags.sqlite"
    FlagStore(db).add(flag())
    start = time.monotonic()
    FlagStore(db).list(limit=PAGE)
    assert time.monotonic() - start < 5


def test_the_viewers_slice_files_are_private_to_the_app(tmp_path):
    import stat

    from mrnet.app.pixels import PixelStore
    store = PixelStore(tmp_path / "viewer")
    url = store(b"slices")
    path = tmp_path / "viewer" / url.rsplit("/", 1)[1]
    assert path.read_bytes() == b"slices" and stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_flag_knows_whether_the_judged_map_hits_the_lesion(analysis):
    """judged_hit: the pointing game on the flagged slice, from the map of the method judged; no mask, no answer."""
    import cv2

    from mrnet.core.config import TASK_BITS
    from mrnet.core.pointing import DILATE_PX, judged_hit
    result = analysis.tasks["acl"].planes["sagittal"]
    cam = cv2.resize(result.maps["exact"][2].astype(np.float32), (256, 256), interpolation=cv2.INTER_LINEAR)
    y, x = np.unravel_index(int(np.argmax(cam)), cam.shape)
    masks = np.zeros((6, 256, 256), np.uint8)
    masks[2, y, x] = TASK_BITS["acl"]                                  # an ACL lesion at the map's maximum
    assert judged_hit(analysis, {"sagittal": masks}, "acl", "sagittal", 2, "exact") == 1
    far = np.zeros_like(masks)
    far[2, (y + DILATE_PX + 40) % 256, (x + DILATE_PX + 40) % 256] = TASK_BITS["acl"]
    assert judged_hit(analysis, {"sagittal": far}, "acl", "sagittal", 2, "exact") == 0
    assert judged_hit(analysis, {"sagittal": masks}, "acl", "sagittal", 3, "exact") == 0  # no lesion on slice 3
    meniscus_only = np.where(masks > 0, TASK_BITS["meniscus"], 0).astype(np.uint8)
    assert judged_hit(analysis, {"sagittal": meniscus_only}, "acl", "sagittal", 2, "exact") == 0  # another task's
    assert judged_hit(analysis, {}, "acl", "sagittal", 2, "exact") is None                   # a set without masks
    assert judged_hit(analysis, {"sagittal": masks}, "acl", "sagittal", 99, "exact") is None


def test_saves_are_limited_per_address_with_a_global_cap_and_forgotten_after(monkeypatch):
    """Round 4: the limit is keyed by the client's address (a fresh session id per save got 100 of 100 through),
    all addresses together are capped, and an address with no recent save is forgotten."""
    now = [0.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    limit = SaveLimit(count=10, seconds=60, total=25)
    for _ in range(10):
        limit.check("203.0.113.5")
    with pytest.raises(MRNetError, match="At most 10 flags a minute"):
        limit.check("203.0.113.5")
    for i in range(15):
        limit.check(f"198.51.100.{i}")  # other visitors: one each, until everyone's cap
    with pytest.raises(MRNetError, match="many flags right now"):
        limit.check("192.0.2.1")
    now[0] += 61
    limit.check("192.0.2.1")
    assert list(limit.recent) == ["192.0.2.1"]  # the quiet addresses are gone


def raw_rows(db, rows):
    """Rows written by hand, as an older app or another writer might have left them (NULLs where the schema now
    says NOT NULL: the table is made without those constraints)."""
    with sqlite3.connect(db) as raw:
        raw.execute("CREATE TABLE IF NOT EXISTS flags (id INTEGER PRIMARY KEY AUTOINCREMENT, dataset TEXT, split TEXT, "
                    "case_id TEXT, task TEXT, plane TEXT, slice INTEGER, method TEXT, verdict TEXT, comment TEXT, "
                    "weights TEXT, created TEXT, pointing INTEGER)")
        if raw.execute("PRAGMA user_version").fetchone()[0] == 0:
            raw.execute("PRAGMA user_version = 3")  # the schema before the counts: they are made from these rows
        raw.executemany("INSERT INTO flags (dataset, split, case_id, task, plane, slice, method, verdict, comment, "
                        "weights, created, pointing) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def test_unknown_verdicts_and_nulls_are_skipped_and_counted_never_a_broken_page(tmp_path):
    db = tmp_path / "flags.sqlite"
    good = ("phantom", "valid", "0001", "acl", "sagittal", 3, "shapley", "on", "ok", "w1", "t", 1)
    raw_rows(db, [good, good[:7] + ("off",) + good[8:11] + (1,), good[:7] + ("maybe",) + good[8:],
                  good[:3] + (None,) + good[4:], good[:8] + (None,) + good[9:], good[:6] + (None,) + good[7:],
                  good[:7] + (None,) + good[8:]])
    store = FlagStore(db)
    rows, skipped = store.summary()
    assert skipped == 5
    assert [(r["n"], r["on"], r["off"], r["pointing_n"], r["agree"]) for r in rows] == [(2, 1, 1, 2, 1)]
    assert [f.verdict for f in store.list(limit=PAGE)] == ["on", "off"]
    run = mrnet_cli("flags", "summary", "--db", db)
    assert run.returncode == 0 and "Traceback" not in run.stderr
    assert run.stderr.strip() == "warning: 5 flags in the database are not counted: an unknown verdict or a missing value."
    exported = mrnet_cli("flags", "export", "--out", "-", "--db", db)
    assert exported.returncode == 0 and exported.stdout.count("\n") == 3  # the header and the two good flags


def test_the_summary_counts_as_the_flags_say(tmp_path):
    """SQLite's aggregation equals counting the flags one by one."""
    rng = np.random.default_rng(3)
    store = FlagStore(tmp_path / "flags.sqlite")
    for i in range(120):
        store.add(Flag("phantom", "valid", f"{i % 9:04d}", str(rng.choice(["acl", "abnormal"])), "coronal", 2,
                       str(rng.choice(["shapley", "exact"])), str(rng.choice(["on", "off", "unsure"])), "", "w",
                       pointing=[None, 0, 1][int(rng.integers(3))]))
    expected: dict = {}
    for f in store.list():
        row = expected.setdefault((f.task, f.method), [0, 0, 0, 0, 0, 0])
        row[0] += 1
        row[1 + ["on", "off", "unsure"].index(f.verdict)] += 1
        if f.pointing is not None and f.verdict != "unsure":
            row[4] += 1
            row[5] += int((f.verdict == "on") == bool(f.pointing))
    rows, skipped = store.summary()
    assert skipped == 0
    assert {(r["task"], r["method"]): [r["n"], r["on"], r["off"], r["unsure"], r["pointing_n"], r["agree"]]
            for r in rows} == expected


def agreement_from_every_flag(store: FlagStore) -> list[dict]:
    """What the agreement must be, from every flag read in order (the latest verdict of a view per reviewer)."""
    views: dict = {}
    for f in store.list():
        views.setdefault((f.weights, f.task, f.method), {}).setdefault(
            (f.dataset, f.case_id, f.plane, f.slice), {})[f.reviewer] = f.verdict
    result = []
    for key, judged in sorted(views.items()):
        counts = {r: {v: sum(1 for j in judged.values() if j.get(r) == v) for v in VERDICTS}
                  for r in sorted({r for j in judged.values() for r in j})}
        result.append(agreement_of(key, {view: j for view, j in judged.items() if len(j) > 1}, counts))
    return result


def test_the_agreement_read_from_kept_views_equals_every_flag_read_again(tmp_path):
    """#37: the agreement reads the views SQLite keeps (latest verdict per reviewer, reviewers per view) rather
    than every flag. After saves, a reviewer's second verdict, deletions by another writer (the latest flag of a
    view and an older one) and a migration from version 5, it equals the agreement from every flag."""
    rng = np.random.default_rng(11)
    db = tmp_path / "flags.sqlite"
    store = FlagStore(db)
    for _ in range(400):
        store.add(Flag("phantom", "valid", f"{int(rng.integers(12)):04d}", "acl", "coronal", int(rng.integers(2)),
                       str(rng.choice(["shapley", "exact"])), str(rng.choice(["on", "off", "unsure"])), "", "w",
                       reviewer=str(rng.choice(["ada", "grace", "alan"]))))
    assert store.agreement() == agreement_from_every_flag(store)
    assert any(p.get("kappa") is not None for r in store.agreement() for p in r["pairs"])
    with sqlite3.connect(db) as other:  # another writer deletes flags: some a view's latest, some older
        other.execute("DELETE FROM flags WHERE id % 7 = 0 OR id > 390")
    assert store.agreement() == agreement_from_every_flag(store)
    with sqlite3.connect(db) as other:  # as version 5 left it: no kept views; the migration makes them
        for table in ("flag_views", "view_reviewers", "reviewer_counts"):
            other.execute(f"DROP TABLE {table}")
        other.execute("PRAGMA user_version = 5")
    again = FlagStore(db)
    assert again.agreement() == agreement_from_every_flag(again)
    with sqlite3.connect(db) as raw:
        assert raw.execute("SELECT COUNT(*) FROM view_reviewers WHERE n < 1").fetchone()[0] == 0


def test_control_characters_are_removed_at_save_and_neutralised_at_export(tmp_path):
    db = tmp_path / "flags.sqlite"
    store = FlagStore(db)
    store.add(flag(1, "red \x1b[31malert\x1b[0m\x07 bell\r\nnext line\x00"))
    assert store.list()[0].comment == "red [31malert[0m bell\nnext line"
    raw_rows(db, [("phantom", "valid", "0002", "acl", "coronal", 1, "exact", "on", "old \x1b]0;title\x07 row", "w",
                   "t", None)])
    exported = mrnet_cli("flags", "export", "--out", "-", "--db", db)
    assert exported.returncode == 0 and "\x1b" not in exported.stdout and "\x07" not in exported.stdout
    assert "old \\x1b]0;title\\x07 row" in exported.stdout
