"""Labelled sets (mrnet.sets.cases), the score table and its ROC/AUC (mrnet.sets.scores), `python -m mrnet score` with its
cache and resume after a kill, and reviewer flags in SQLite with concurrent writers (mrnet.sets.flags)."""
import csv
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.metrics import roc_curve as sk_roc_curve

from mrnet.core.errors import MRNetError
from mrnet.sets.cases import open_folder
from mrnet.sets.flags import Flag, FlagStore
from mrnet.sets.metrics import auc, roc_curve
from mrnet.sets.scores import read_scores

from helpers import CallsAnalyzer, write_set
from server import ROOT


def test_a_good_set_reads_whole(tmp_path):
    cases = open_folder(write_set(tmp_path / "set"))
    assert cases.ids == ["0000", "0001", "0002", "0003"] and cases.problems == []
    assert cases.labels["0003"] == {"abnormal": 1, "acl": 1, "meniscus": 1}
    exam = cases.exam("0002")
    assert exam.planes == ["axial", "coronal", "sagittal"] and exam.volumes["axial"].shape == (6, 256, 256)
    with pytest.raises(MRNetError, match="no case '0099'"):
        cases.exam("0099")


def test_a_damaged_set_says_each_problem_and_keeps_the_good_cases(tmp_path):
    root = write_set(tmp_path / "set")
    for f in (root / "valid" / "coronal").iterdir():
        f.unlink()
    (root / "valid" / "coronal").rmdir()                                   # a missing plane
    (root / "valid-meniscus.csv").unlink()                                 # a missing label file
    (root / "valid-acl.csv").write_text("0,1\n1,maybe\nnot a row\n2,0\n3,1\n77,1\n")  # malformed lines, an absent case
    (root / "valid" / "axial" / "notes.txt").write_text("stray")           # a stray file
    (root / "valid" / "sagittal" / "0003.npy").unlink()                    # a case lacking one plane
    (root / "valid" / "axial" / "0001.npy").write_bytes(b"\x93NUMPY garbage")  # a broken exam file
    cases = open_folder(root)
    text = "\n".join(cases.problems)
    assert "There is no valid/coronal folder" in text
    assert "valid-meniscus.csv is missing" in text
    assert "valid-acl.csv: lines 2 and 3" in text and "skipped" in text
    assert "valid-acl.csv labels 1 case with no exam file (0077)" in text
    assert "valid/axial holds 1 item that is not NNNN.npy (notes.txt)" in text
    assert "1 case (0003) has no sagittal file" in text
    assert len(cases.problems) == 6 and all("\n" not in p and "Traceback" not in p for p in cases.problems)
    assert cases.ids == ["0000", "0001", "0002", "0003"]
    assert cases.labels["0002"] == {"abnormal": 1, "acl": 0} and "meniscus" not in cases.labels["0000"]
    assert cases.exam("0003").planes == ["axial"]
    with pytest.raises(MRNetError, match="0001.npy"):
        cases.exam("0001")
    assert cases.exam("0000").planes == ["axial", "sagittal"]  # the good cases stay browsable


def test_not_a_set_is_one_sentence(tmp_path):
    with pytest.raises(MRNetError, match="not in MRNet's layout"):
        open_folder(tmp_path)
    with pytest.raises(MRNetError, match="is not a folder"):
        open_folder(tmp_path / "nowhere")


def test_the_phantom_set_labels_match_the_generated_exams():
    from mrnet.phantom import generate_exam
    from mrnet.sets.phantom_set import case_seed, phantom_cases
    cases = phantom_cases()
    assert len(cases.ids) == 60
    for case in ("0000", "0007"):
        assert cases.labels[case] == generate_exam(case_seed(case)).labels
    # never a training seed of the bundled weights (trained on `phantom --seed 0`: seeds below 100000)
    assert min(case_seed(c) for c in cases.ids) >= 100000


def test_roc_and_auc_agree_with_scikit_learn():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 300)
    scores = np.round(rng.random(300) + labels * 0.3, 1)  # many ties
    fpr, tpr, _ = roc_curve(labels, scores)
    sk_fpr, sk_tpr, _ = sk_roc_curve(labels, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)
    assert auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores))
    assert auc([1, 1], [0.2, 0.3]) is None


def test_the_weights_digest_follows_the_predictions_not_the_card(random_weights):
    from dataclasses import replace

    from mrnet.core.weights import load_weights
    from mrnet.sets.scores import weights_digest
    weights = load_weights(random_weights)
    before = weights_digest(weights)
    weights.config.provenance["evaluation"] = {"auc": 0.5}   # what `evaluate --record` writes
    assert weights_digest(weights) == before
    weights.config = replace(weights.config, fusion={"acl": {"intercept": 1.0, "coef": {"sagittal": 1.0}}})
    assert weights_digest(weights) != before


def score_cli(data, out, weights, *extra, **popen):
    cmd = [sys.executable, "-m", "mrnet", "score", str(data), "--out", str(out), "--weights", str(weights),
           "--no-progress", *extra]
    if popen:
        return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


@pytest.mark.slow
@pytest.mark.long
def test_score_caches_resumes_after_a_kill_and_rescoring_only_what_changed(tmp_path, random_weights):
    root = write_set(tmp_path / "set", n=16, slices=16)
    whole = score_cli(root, tmp_path / "whole.csv", random_weights)
    assert (whole["cases"], whole["scored"], whole["reused"]) == (16, 16, 0)
    assert set(whole["auc"]) == {"abnormal", "acl", "meniscus"} and whole["auc"]["acl"]["n"] == 16
    table = read_scores(tmp_path / "whole.csv")
    assert len(table.rows) == 48 and {r["label"] for r in table.rows} == {0, 1}

    # killed mid-run: what was scored stays, the rerun does the rest, and the table equals the uninterrupted one
    out = tmp_path / "killed.csv"
    proc = score_cli(root, out, random_weights, popen=True)
    cache = out.with_name(out.name + ".cache.jsonl")
    deadline = time.time() + 300
    while not (cache.is_file() and cache.read_text().count("\n") >= 3):
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read() if proc.poll() is not None else "slow"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    done = cache.read_text().count("\n")
    assert 3 <= done < 16
    resumed = score_cli(root, out, random_weights)
    assert resumed["reused"] == done and resumed["scored"] == 16 - done
    assert (tmp_path / "killed.csv").read_text() == (tmp_path / "whole.csv").read_text()

    # one case changes: only it is scored again; a label change needs no scoring at all
    np.save(root / "valid" / "axial" / "0005.npy", np.full((16, 64, 64), 7, np.uint8) + np.eye(64, dtype=np.uint8)[None])
    (root / "valid-acl.csv").write_text("".join(f"{i},{1 - i % 2}\n" for i in range(16)))
    again = score_cli(root, out, random_weights)
    assert (again["scored"], again["reused"]) == (1, 15)
    rows = {(r["case"], r["task"]): r for r in read_scores(out).rows}
    assert rows[("0002", "acl")]["label"] == 1 and rows[("0001", "acl")]["label"] == 0


def add_flags(args):
    path, writer, count = args
    store = FlagStore(path)
    for i in range(count):
        store.add(Flag("phantom", "valid", f"{i:04d}", "acl", "sagittal", i, "exact",
                       ["on", "off", "unsure"][i % 3], f"writer {writer} flag {i}", "abc123"))


def test_concurrent_writers_lose_no_flag_and_the_export_lists_them(tmp_path):
    db = tmp_path / "flags.sqlite"
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        pool.map(add_flags, [(db, w, 40) for w in range(4)])
    flags = FlagStore(db).list()
    assert len(flags) == 160
    assert len({f.comment for f in flags}) == 160
    out = tmp_path / "flags.csv"
    run = subprocess.run([sys.executable, "-m", "mrnet", "flags", "export", "--out", str(out), "--db", str(db)],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 160 and rows[0]["case_id"] == "0000" and rows[0]["created"].endswith("Z")
    assert {r["verdict"] for r in rows} == {"on", "off", "unsure"}
    with pytest.raises(MRNetError, match="A flag says one of"):
        FlagStore(db).add(Flag("phantom", "valid", "0000", "acl", "sagittal", 0, "exact", "maybe", "", "abc"))


def test_an_unopenable_flag_database_is_one_sentence(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(MRNetError, match="cannot be opened") as err:
        FlagStore(tmp_path / "file" / "flags.sqlite").add(
            Flag("phantom", "valid", "0000", "acl", "sagittal", 0, "exact", "on", "", "abc"))
    assert str(tmp_path) not in str(err.value)  # the server's path stays on the server
    env = dict(os.environ)
    run = subprocess.run([sys.executable, "-m", "mrnet", "flags", "export", "--out", "-", "--db",
                          str(tmp_path / "file" / "x.sqlite")], cwd=ROOT, capture_output=True, text=True, env=env)
    assert run.returncode == 2 and run.stderr.startswith("error: There is no flag database")


def test_the_browser_and_training_read_label_files_alike(tmp_path):
    """One reader of MRNet's CSVs: `0001, 1` (spaces), blank lines and 1.0 are read by both; a bad line is
    skipped by the browser and refused by training, in the same words."""
    from mrnet.toolchain.dataset import read_split
    root = write_set(tmp_path / "set")
    for t, labels in (("abnormal", [1, 0, 1, 1]), ("acl", [1, 0, 0, 1]), ("meniscus", [0, 0, 1, 1])):
        (root / f"valid-{t}.csv").write_text("".join(f"{i:04d}, {labels[i]}.0\n\n" for i in range(4)))
    cases, split = open_folder(root), read_split(root, "valid")
    assert cases.problems == [] and split.ids == cases.ids
    for task in ("abnormal", "acl", "meniscus"):
        assert [cases.labels[c][task] for c in cases.ids] == list(split.labels[task])
    (root / "valid-acl.csv").write_text("0000,1\n0001;0\n0002,0\n0003,1\n")
    said = next(p for p in open_folder(root).problems if "valid-acl.csv" in p)
    with pytest.raises(MRNetError) as refused:
        read_split(root, "valid")
    sentence = "valid-acl.csv: line 2 is not `id,label` with a label of 0 or 1"
    assert said.startswith(sentence) and str(refused.value).startswith(sentence)


def test_compare_mode_runs_both_weights_side_by_side_on_one_read_of_the_exam(random_weights):
    """Opening a case in compare mode starts the second weights' analysis beside the first (not after it), both
    on the same exam, read once; a read that fails is said, and tried again when the case is asked for again."""
    import threading

    from mrnet.app.browse import CaseBrowser
    from mrnet.core.analysis import analyze
    from mrnet.core.compute import compute_for
    from mrnet.core.exam import Exam
    from mrnet.core.weights import load_weights
    from mrnet.phantom import generate_exam
    from mrnet.sets.cases import CaseSet
    weights, compute = load_weights(random_weights), compute_for("cpu", "fp32")
    exam = Exam(volumes=generate_exam(seed=7, slices=12).volumes)
    reads, runs, lock = [], [], threading.Lock()

    def read(case):
        reads.append(case)
        if case == "0002" and reads.count(case) == 1:
            raise MRNetError("the file is being written")
        return exam

    def timed(which):
        def run(given):
            start = time.perf_counter()
            result = analyze(given, weights, compute)
            with lock:
                runs.append((which, start, time.perf_counter(), given))
            return result
        return run
    cases = CaseSet(name="s", title="Set", split="valid", ids=["0001", "0002"], labels={}, fingerprint=str,
                    load_exam=read)
    browser = CaseBrowser({"s": type("Item", (), {"cases": cases})()}, CallsAnalyzer(timed("a"), timed("b")))
    opened = browser.open("s", "0001", compare=True)
    second = browser.second("s", "0001")
    (_, a_start, a_end, a_exam), (_, b_start, b_end, b_exam) = sorted(runs, key=lambda r: r[0])
    assert reads == ["0001"] and a_exam is b_exam is opened.analysis.exam is second.analysis.exam
    assert b_start < a_end and a_start < b_end  # side by side, not one after the other
    browser.open("s", "0001")
    assert len(runs) == 2 and reads == ["0001"]  # kept: neither analysed nor read again
    with pytest.raises(MRNetError, match="being written"):
        browser.open("s", "0002", compare=True)
    # asked again, A and B read it once between them (B may have read it already, after A's failed read)
    assert browser.open("s", "0002", compare=True).analysis.exam is exam and reads.count("0002") == 2
    assert browser.second("s", "0002").analysis.exam is exam and reads.count("0002") == 2


def test_colliding_ids_a_bom_and_a_float_mask_are_said_or_read(tmp_path):
    """#37: 7.npy, 07.npy and 0007.npy name one case: said, naming them, and none is read silently; a label file
    with a BOM keeps its first line; a float32 lesion mask of whole numbers is read as one, and one that is not
    leaves the case without a mask (the flag's pointing game is then NULL)."""
    from mrnet.sets.cases import checked_mask
    root = write_set(tmp_path / "set")
    for name in ("7.npy", "07.npy", "0007.npy"):
        np.save(root / "valid" / "axial" / name, np.zeros((6, 64, 64), np.uint8))
    (root / "valid-acl.csv").write_bytes(b"\xef\xbb\xbf0,1\n1,0\n2,0\n3,1\n")
    cases = open_folder(root)
    said = next(p for p in cases.problems if "0007" in p)
    assert said == "valid/axial: 0007.npy, 07.npy and 7.npy all name case 0007: none of them is read; keep one."
    assert "0007" not in cases.ids
    assert cases.labels["0000"]["acl"] == 1 and not any("valid-acl.csv" in p for p in cases.problems)
    whole = np.zeros((2, 8, 8), np.float32)
    whole[0, 2, 2] = 3
    assert checked_mask(whole).dtype == np.uint8 and checked_mask(whole)[0, 2, 2] == 3
    with pytest.raises(MRNetError, match="whole numbers"):
        checked_mask(whole + 0.5)


def test_the_cases_view_gets_each_tasks_roc_from_the_server():
    """#36: the Cases view draws the ROC the server computed (browse.rocs over mrnet.sets.metrics) instead of a
    third copy in JavaScript: each task's points are scikit-learn's curve at every distinct score, and its AUC."""
    import numpy as np
    from sklearn.metrics import roc_auc_score, roc_curve

    from mrnet.app.browse import table_payload, with_scores
    from mrnet.core.weights import load_weights
    from mrnet.sets.phantom_set import SCORES, phantom_cases
    from mrnet.sets.scores import read_scores
    payload = table_payload(with_scores(phantom_cases(), SCORES, load_weights(ROOT / "weights"), name="A"))
    rows = read_scores(SCORES).rows
    assert set(payload["roc"]) == {r["task"] for r in rows}
    for task, curve in payload["roc"].items():
        y = np.array([r["label"] for r in rows if r["task"] == task])
        p = np.array([r["probability"] for r in rows if r["task"] == task])
        fpr, tpr, _ = roc_curve(y, p, drop_intermediate=False)
        np.testing.assert_allclose(curve["points"], np.c_[fpr, tpr], atol=1e-6)
        assert curve["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
        assert (curve["pos"], curve["neg"]) == (int(y.sum()), int((1 - y).sum()))
