"""#35 Lesion marks: a reviewer's point or box on the judged slice, kept with the flag; the pointing game against
it on any set (masks or not), and the mark's own accuracy where the set has masks. Real SQLite files and the CLI."""
import csv
import io
import json
import sqlite3

import cv2
import numpy as np
import pytest

from mrnet.app.view import Mark, View
from mrnet.core.config import TASK_BITS
from mrnet.core.errors import MRNetError
from mrnet.core.pointing import DILATE_PX, mark_hit, mark_on_lesion, mark_zone
from mrnet.sets.flags import SCHEMA_VERSION, Flag, FlagStore
from mrnet.sets.statistics import wilson_interval

from helpers import mrnet_cli


@pytest.fixture(scope="module")
def analysis(random_weights):
    from mrnet.core.analysis import analyze
    from mrnet.core.compute import compute_for
    from mrnet.core.exam import Exam
    from mrnet.core.weights import load_weights
    rng = np.random.default_rng(1)
    exam = Exam(volumes={p: rng.integers(0, 255, (6, 256, 256), dtype=np.uint8) for p in ("coronal", "sagittal")})
    return analyze(exam, load_weights(random_weights), compute_for("cpu", "fp32"))


def test_a_mark_is_read_inside_its_slice_and_anything_else_is_one_sentence(analysis):
    assert Mark.parse(None, analysis) is None
    assert Mark.parse({"plane": "sagittal", "slice": 2, "x": 10, "y": 20}, analysis) == Mark("sagittal", 2, 10, 20, 0, 0)
    assert Mark.parse({"plane": "coronal", "slice": 5, "x": 0, "y": 0, "w": 255, "h": 255}, analysis).w == 255
    hostile = {
        "outside the slice": ({"plane": "sagittal", "slice": 1, "x": 250, "y": 3, "w": 10, "h": 0}, "outside the slice"),
        "negative box": ({"plane": "sagittal", "slice": 1, "x": 50, "y": 50, "w": -5, "h": 4}, "negative width"),
        "no position": ({"plane": "sagittal", "slice": 1}, "not understood"),
        "negative point": ({"plane": "sagittal", "slice": 1, "x": -1, "y": 0}, "outside the slice"),
        "slice past the end": ({"plane": "sagittal", "slice": 6, "x": 1, "y": 1}, "which has 6 slices"),
        "a plane the exam lacks": ({"plane": "axial", "slice": 0, "x": 1, "y": 1}, "not understood"),
        "booleans": ({"plane": "sagittal", "slice": True, "x": 1, "y": 1}, "not understood"),
        "floats": ({"plane": "sagittal", "slice": 1, "x": 1.5, "y": 1}, "not understood"),
        "a huge number": ({"plane": "sagittal", "slice": 1, "x": 10**30, "y": 1}, "outside the slice"),
        "text": ("sagittal,1,2,3", "not understood"),
    }
    for name, (raw, said) in hostile.items():
        with pytest.raises(MRNetError, match=said) as err:
            Mark.parse(raw, analysis)
        assert str(err.value).count(".") <= 2 and "\n" not in str(err.value), name
    # a view carries a valid mark and drops a bad one (the flag's save says why, through Mark.parse)
    raw = {"task": "acl", "mark": {"plane": "sagittal", "slice": 2, "x": 10, "y": 20, "w": 3, "h": 4}}
    assert View.of(raw, analysis).mark == Mark("sagittal", 2, 10, 20, 3, 4)
    assert View.of({**raw, "mark": {"plane": "sagittal", "slice": 2, "x": 300, "y": 0}}, analysis).mark is None
    # a link's mark: plane,slice,x,y,w,h; a malformed one is named among the parts not understood
    view, ignored = View.from_link({"task": "acl", "mark": "coronal,3,40,50,0,0"}, analysis)
    assert view.mark == Mark("coronal", 3, 40, 50) and ignored == []
    for text in ("coronal,3,40,50", "coronal,3,-4,50,0,0", "coronal,3,400,50,0,0", "x" * 500, "coronal,3,4,5,0,1e9"):
        view, ignored = View.from_link({"task": "acl", "mark": text}, analysis)
        assert view.mark is None and ignored == ["mark"], text


def test_the_pointing_game_against_a_mark_and_the_marks_own_accuracy(analysis):
    cam = analysis.tasks["acl"].planes["sagittal"].maps["exact"][2]
    up = cv2.resize(cam.astype(np.float32), (256, 256), interpolation=cv2.INTER_LINEAR)
    y, x = np.unravel_index(int(np.argmax(up)), up.shape)
    assert mark_hit(cam, mark_zone((256, 256), x, y)) == 1                       # a point on the maximum
    near = (x + DILATE_PX - 3) % 256 if x + DILATE_PX - 3 < 256 else x - DILATE_PX + 3
    assert mark_hit(cam, mark_zone((256, 256), near, y)) == 1                    # within the tolerance
    far_x, far_y = (x + 128) % 256, (y + 128) % 256
    assert mark_hit(cam, mark_zone((256, 256), far_x, far_y)) == 0               # far from it
    box = mark_zone((256, 256), max(0, x - 40), max(0, y - 40), 80, 80)
    assert box.sum() > 1 and mark_hit(cam, box) == 1                             # a box around it
    assert mark_zone((256, 256), 250, 250, 20, 20).sum() == 36                   # clipped to the slice
    lesion = np.zeros((256, 256), np.uint8)
    lesion[100:110, 100:110] = TASK_BITS["acl"]
    assert mark_on_lesion(lesion, "acl", mark_zone((256, 256), 104, 104)) == 1
    assert mark_on_lesion(lesion, "acl", mark_zone((256, 256), 109 + DILATE_PX - 2, 104)) == 1  # near its edge
    assert mark_on_lesion(lesion, "acl", mark_zone((256, 256), 200, 30)) == 0
    assert mark_on_lesion(lesion, "meniscus", mark_zone((256, 256), 104, 104)) == 0  # another task's lesion


def flag(i, plane="sagittal", method="shapley", weights="w1", **kw):
    return Flag("phantom", "valid", f"{i:04d}", "acl", plane, i % 5, method, "on", "", weights, **kw)


def test_marks_are_summarised_per_weights_method_and_plane_and_exported(tmp_path):
    db = tmp_path / "flags.sqlite"
    store = FlagStore(db)
    hits = [1, 1, 0, 1, 0, 1, 1]
    for i, hit in enumerate(hits):
        store.add(flag(i, mark_x=10 + i, mark_y=20, mark_w=0, mark_h=0, mark_hit=hit, mark_on_lesion=i % 2))
    store.add(flag(20, plane="coronal", mark_x=5, mark_y=6, mark_w=7, mark_h=8, mark_hit=0))   # no masks: no accuracy
    store.add(flag(21, method="exact", mark_x=5, mark_y=6, mark_w=0, mark_h=0, mark_hit=1))
    store.add(flag(22))                                                                          # no mark
    with sqlite3.connect(db) as other:  # another writer's row: a pointing game that is not 0 or 1 is skipped
        other.execute("INSERT INTO flags (dataset, split, case_id, task, plane, slice, method, verdict, comment, "
                      "weights, created, mark_x, mark_y, mark_hit) VALUES ('p', 'valid', '9', 'acl', 'sagittal', 0, "
                      "'shapley', 'on', '', 'w1', 'now', 1, 1, 'yes')")
    marks = {(r["weights"], r["method"], r["plane"]): r for r in store.marks()}
    assert set(marks) == {("w1", "shapley", "sagittal"), ("w1", "shapley", "coronal"), ("w1", "exact", "sagittal")}
    sagittal = marks["w1", "shapley", "sagittal"]
    assert (sagittal["n"], sagittal["hits"], sagittal["with_mask"], sagittal["on_lesion"]) == (7, 5, 7, 3)
    assert (sagittal["low"], sagittal["high"]) == pytest.approx(wilson_interval(5, 7))
    assert marks["w1", "shapley", "coronal"]["with_mask"] == 0
    # the CLI: the same numbers as JSON, and the export's columns carry the marks
    done = mrnet_cli("flags", "marks", "--db", db, "--json")
    assert done.returncode == 0 and json.loads(done.stdout) == store.marks()
    text = mrnet_cli("flags", "summary", "--db", db)
    assert text.returncode == 0 and "pointing game against reviewers' marks" in text.stdout
    exported = mrnet_cli("flags", "export", "--out", "-", "--db", db)
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    box = next(r for r in rows if r["case_id"] == "0020")
    assert (box["mark_x"], box["mark_y"], box["mark_w"], box["mark_h"], box["mark_hit"]) == ("5", "6", "7", "8", "0")
    assert next(r for r in rows if r["case_id"] == "0022")["mark_x"] == ""


def test_a_schema_6_database_gains_marks_in_place(tmp_path):
    db = tmp_path / "flags.sqlite"
    FlagStore(db).add(flag(1, mark_x=1, mark_y=1, mark_w=0, mark_h=0, mark_hit=1))
    with sqlite3.connect(db) as old:  # as version 6 left it: no mark columns
        old.execute("DROP INDEX flags_marked")
        for column in ("mark_x", "mark_y", "mark_w", "mark_h", "mark_hit", "mark_on_lesion", "palette"):
            old.execute(f"ALTER TABLE flags DROP COLUMN {column}")
        old.execute("PRAGMA user_version = 6")
    store = FlagStore(db)
    assert [(f.case_id, f.mark_x, f.mark_hit, f.palette) for f in store.list()] == [("0001", None, None, None)]
    assert store.marks() == []
    store.add(flag(2, mark_x=3, mark_y=4, mark_w=0, mark_h=0, mark_hit=0))
    assert [(r["n"], r["hits"]) for r in store.marks()] == [(1, 0)]
    with sqlite3.connect(db) as again:
        assert again.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_evaluate_scores_each_map_against_reviewers_marks_on_a_set_without_masks(tmp_path, random_weights, capsys):
    """`evaluate --marks FLAGS_DB`: a set with no masks still gets a pointing game, from the marks reviewers left
    in the app: a box over the whole slice is hit by every map, a point far from every map's maximum by none;
    marks naming nothing in the set are counted as unused; each reviewer's latest mark of a view counts."""
    from mrnet.cli import main
    from mrnet.core.analysis import analyze
    from mrnet.core.exam import Exam
    from mrnet.core.weights import load_weights
    from mrnet.toolchain.dataset import read_split

    from helpers import write_set
    data = write_set(tmp_path / "set", n=4, slices=6)
    split = read_split(data, "valid")
    volumes = {p: split.volume(p, 1) for p in split.planes}
    maps = analyze(Exam(volumes=volumes), load_weights(random_weights)).tasks["acl"].planes["coronal"].maps
    rows, columns = volumes["coronal"].shape[1:]
    peaks = []
    for cam in maps.values():
        up = cv2.resize(cam[1].astype(np.float32), (columns, rows), interpolation=cv2.INTER_LINEAR)
        peaks.append(np.unravel_index(int(np.argmax(up)), up.shape))
    far = next((x, y) for y in range(rows) for x in range(columns)
               if all(np.hypot(x - px, y - py) > DILATE_PX + 2 for py, px in peaks))
    db = tmp_path / "flags.sqlite"
    store = FlagStore(db)

    def marked(case, plane, index, x, y, w=0, h=0, reviewer="ann", dataset="hospital"):
        store.add(Flag(dataset, "valid", case, "acl", plane, index, "shapley", "on", "", "w", reviewer=reviewer,
                       mark_x=x, mark_y=y, mark_w=w, mark_h=h, mark_hit=0))
    marked(split.ids[0], "sagittal", 2, *far)                                  # replaced by ann's later mark
    marked(split.ids[0], "sagittal", 2, 0, 0, columns - 1, rows - 1)           # the whole slice
    marked(split.ids[1], "coronal", 1, *far)                                   # far from every map's maximum
    marked("9999", "coronal", 1, 3, 3)                                         # no such case: unused
    marked(split.ids[2], "coronal", 99, 3, 3)                                  # no such slice: unused
    marked(split.ids[2], "coronal", 1, 3, 3, dataset="another set")            # left out by --marks-dataset
    code = main([str(x) for x in ("evaluate", "--data", data, "--weights", random_weights, "--randomization-exams",
                                  0, "--marks", db, "--marks-dataset", "hospital")])
    out = capsys.readouterr()
    assert code == 0, out.err
    found = json.loads(out.out)["pointing_game_marks"]
    assert (found["n"], found["unused"], found["dilation_px"]) == (2, 2, DILATE_PX)
    assert found["n_per_plane"] == {"axial": 0, "coronal": 1, "sagittal": 1}
    for method, hits in found["hits"].items():
        assert (hits["all"], hits["sagittal"], hits["coronal"], hits["axial"]) == (0.5, 1.0, 0.0, None), method
        assert (hits["low"], hits["high"]) == pytest.approx(wilson_interval(1, 2), abs=1e-4)
    assert "Mask measures skipped" in out.err  # the mask-based measures say why they are absent
    code = main(["evaluate", "--data", str(data), "--weights", str(random_weights), "--marks", str(tmp_path / "no.db")])
    err = capsys.readouterr().err
    assert code == 2 and "There is no flag database" in err and len(err.strip().splitlines()) == 1
