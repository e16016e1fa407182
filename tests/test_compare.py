"""Two weights on one set: the statistics (DeLong, McNemar, Wilson, calibration, operating points) against
independent computations, and `python -m mrnet compare` / `flags summary` on real files."""
import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import brier_score_loss, roc_curve

from mrnet.sets.flags import Flag, FlagStore
from mrnet.sets.metrics import auc
from mrnet.sets.scores import read_scores, write_scores
from mrnet.sets.statistics import (
    brier,
    delong,
    expected_calibration_error,
    mcnemar_exact,
    reliability_bins,
    threshold_presets,
    wilson_interval,
)

from helpers import mrnet_cli, run_async

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "weights" / "scores-phantom.csv"


def correlated_scores(n=120, seed=0, ties=True):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    signal = rng.normal(size=n)
    a = y * 1.2 + signal + rng.normal(scale=0.8, size=n)
    b = y * 0.7 + signal + rng.normal(scale=0.8, size=n)
    if ties:  # rounded scores tie, as probabilities in a table often do
        a, b = np.round(a, 1), np.round(b, 1)
    return y, a, b


def pairwise_components(y, s):
    """The structural components from their definition, pair by pair (no ranks)."""
    pos, neg = s[y == 1], s[y == 0]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    return psi.mean(axis=1), psi.mean(axis=0)


def test_delong_matches_its_definition_computed_pair_by_pair():
    y, a, b = correlated_scores()
    v10a, v01a = pairwise_components(y, a)
    v10b, v01b = pairwise_components(y, b)
    m, n = len(v10a), len(v01a)
    cov10, cov01 = np.cov(np.stack([v10a, v10b])), np.cov(np.stack([v01a, v01b]))
    var = (cov10[0, 0] + cov10[1, 1] - 2 * cov10[0, 1]) / m + (cov01[0, 0] + cov01[1, 1] - 2 * cov01[0, 1]) / n
    test = delong(y, a, b)
    assert test.auc_a == pytest.approx(auc(y, a), abs=1e-12)
    assert test.auc_b == pytest.approx(auc(y, b), abs=1e-12)
    assert test.standard_error == pytest.approx(np.sqrt(var), rel=1e-10)
    z = test.difference / test.standard_error
    assert test.p_value == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-9)
    assert test.ci_low < test.difference < test.ci_high


def test_delong_standard_error_agrees_with_a_paired_bootstrap():
    y, a, b = correlated_scores(n=200, seed=3, ties=False)
    rng = np.random.default_rng(7)
    diffs = []
    for _ in range(2000):
        i = rng.integers(0, len(y), len(y))
        if 0 < y[i].sum() < len(i):
            diffs.append(auc(y[i], a[i]) - auc(y[i], b[i]))
    assert delong(y, a, b).standard_error == pytest.approx(np.std(diffs), rel=0.15)


def test_identical_models_have_no_difference():
    y, a, _ = correlated_scores()
    test = delong(y, a, a)
    assert test.difference == 0 and test.p_value == 1.0


@pytest.mark.parametrize("only_a,only_b,both", [(0, 0, 5), (3, 9, 40), (12, 12, 0), (1, 20, 10), (25, 7, 3)])
def test_mcnemar_exact_matches_scipy_binomtest(only_a, only_b, both):
    right_a = [True] * only_a + [False] * only_b + [True] * both + [False] * 4
    right_b = [False] * only_a + [True] * only_b + [True] * both + [False] * 4
    b, c, p = mcnemar_exact(right_a, right_b)
    assert (b, c) == (only_a, only_b)
    expected = 1.0 if b + c == 0 else stats.binomtest(min(b, c), b + c, 0.5).pvalue
    assert p == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("k,n", [(0, 10), (8, 10), (81, 263), (50, 50), (1, 3)])
def test_wilson_interval_matches_scipy(k, n):
    ci = stats.binomtest(k, n).proportion_ci(method="wilson")
    assert wilson_interval(k, n) == pytest.approx((ci.low, ci.high), abs=1e-12)


def test_calibration_tells_a_calibrated_model_from_an_overconfident_one():
    rng = np.random.default_rng(1)
    p = rng.uniform(0, 1, 20000)
    y = (rng.uniform(0, 1, p.size) < p).astype(int)
    bins = reliability_bins(y, p)
    assert [r["count"] for r in bins] == [2000] * 10
    assert all(abs(r["observed"] - r["predicted"]) < 0.04 for r in bins)
    assert expected_calibration_error(y, p) < 0.02
    overconfident = np.where(p > 0.5, 1 - (1 - p) ** 3, p ** 3)
    assert expected_calibration_error(y, overconfident) > 0.1
    assert brier(y, p) == pytest.approx(brier_score_loss(y, p), rel=1e-12)
    assert brier(y, overconfident) > brier(y, p)


def test_threshold_presets_youden_and_sensitivity_floor():
    y, a, _ = correlated_scores(n=300, seed=5, ties=False)
    p = 1 / (1 + np.exp(-a))
    half, youden, floor = threshold_presets(y, p)
    fpr, tpr, thr = roc_curve(y, p)
    assert youden.sensitivity + youden.specificity - 1 == pytest.approx(np.max(tpr - fpr), abs=1e-12)
    assert floor.sensitivity >= 0.90
    above = p[y == 1] >= floor.threshold
    assert above.mean() == pytest.approx(floor.sensitivity)
    # the next higher threshold would lose the sensitivity floor: it is the most specific one that keeps it
    higher = np.unique(p)[np.unique(p) > floor.threshold]
    assert (p[y == 1] >= higher.min()).mean() < 0.90
    assert half.threshold == 0.5 and 0 <= half.specificity <= 1


def other_weights_table(tmp_path: Path, seed=0) -> Path:
    """The shipped phantom table with every probability moved as another model's would be (a real CSV)."""
    rows = read_scores(SHIPPED).rows
    rng = np.random.default_rng(seed)
    moved = []
    for r in rows:
        logit = np.log(max(r["probability"], 1e-6) / max(1 - r["probability"], 1e-6))
        p = float(1 / (1 + np.exp(-(0.5 * logit + rng.normal(scale=4.0)))))
        moved.append({**r, "label": "" if r["label"] is None else r["label"], "probability": round(p, 6),
                      "weights": "b" * 16})
    out = tmp_path / "b.csv"
    write_scores(out, moved)
    return out


def test_compare_cli_reports_every_task(tmp_path):
    b = other_weights_table(tmp_path)
    done = mrnet_cli("compare", SHIPPED, b, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    rows_a, rows_b = read_scores(SHIPPED).rows, read_scores(b).rows
    for task, entry in report["tasks"].items():
        y = [r["label"] for r in rows_a if r["task"] == task]
        pa = [r["probability"] for r in rows_a if r["task"] == task]
        pb = [r["probability"] for r in rows_b if r["task"] == task]
        assert entry["n"] == len(y)
        assert entry["auc_a"] == pytest.approx(auc(y, pa))
        assert entry["auc_b"] == pytest.approx(auc(y, pb))
        assert entry["disagreements"] == sum((x >= 0.5) != (z >= 0.5) for x, z in zip(pa, pb))
        assert entry["brier_b"] == pytest.approx(brier_score_loss(y, pb))
        assert entry["delong_ci"][0] <= entry["auc_difference"] <= entry["delong_ci"][1]
    text = mrnet_cli("compare", SHIPPED, b)
    assert text.returncode == 0 and "DeLong" in text.stdout and "McNemar" in text.stdout


def test_compare_cli_refuses_tables_of_different_sets(tmp_path):
    b = other_weights_table(tmp_path)
    rows = list(csv.DictReader(b.open()))
    for r in rows:
        if r["case"] == rows[0]["case"]:
            r["content"] = "another-exam"
    with b.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    done = mrnet_cli("compare", SHIPPED, b)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "different sets" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    short = tmp_path / "short.csv"
    write_scores(short, [{**r, "label": "" if r["label"] is None else r["label"]} for r in read_scores(SHIPPED).rows[:30]])
    done = mrnet_cli("compare", SHIPPED, short)
    assert done.returncode == 2 and "different cases" in done.stderr


def test_flags_summary_counts_verdicts_with_wilson_intervals(tmp_path):
    store = FlagStore(tmp_path / "flags.sqlite")
    verdicts = ["on"] * 7 + ["off"] * 2 + ["unsure"]
    # the pointing game on each flag's slice: agrees with "on" 5 times of 7 and with "off" once of 2; unsure never counts
    pointing = [1, 1, 1, 1, 1, 0, 0] + [0, 1] + [1]
    for i, (verdict, hit) in enumerate(zip(verdicts, pointing)):
        store.add(Flag("phantom", "valid", f"{i:04d}", "acl", "sagittal", 3, "shapley", verdict, "", "w1", pointing=hit))
    store.add(Flag("phantom", "valid", "0001", "acl", "sagittal", 3, "classic", "off", "", "w1"))  # a set without masks
    done = mrnet_cli("flags", "summary", "--db", tmp_path / "flags.sqlite", "--json")
    assert done.returncode == 0, done.stderr
    rows = {(r["task"], r["method"]): r for r in json.loads(done.stdout)}
    shapley = rows["acl", "shapley"]
    assert (shapley["n"], shapley["on"], shapley["off"], shapley["unsure"]) == (10, 7, 2, 1)
    ci = stats.binomtest(7, 10).proportion_ci(method="wilson")
    assert (shapley["share_on_low"], shapley["share_on_high"]) == pytest.approx((ci.low, ci.high))
    assert (shapley["pointing_n"], shapley["agree"]) == (9, 6) and shapley["agreement"] == pytest.approx(6 / 9)
    ci = stats.binomtest(6, 9).proportion_ci(method="wilson")
    assert (shapley["agreement_low"], shapley["agreement_high"]) == pytest.approx((ci.low, ci.high))
    classic = rows["acl", "classic"]
    assert classic["n"] == 1 and classic["pointing_n"] == 0 and classic["agreement"] is None
    table = mrnet_cli("flags", "summary", "--db", tmp_path / "flags.sqlite")
    assert "0.70" in table.stdout and "Wilson" in table.stdout and "6 of 9" in table.stdout and "0.67" in table.stdout


def test_compare_weights_setting():
    from mrnet.core.hub import BUNDLED, BUNDLED_PAIR, resolve, resolve_compare
    bundled = resolve("").weights
    assert resolve_compare("none", bundled) is None
    pair = resolve_compare("", bundled)
    assert pair is not None and pair.weights.source["folder"] == BUNDLED_PAIR.name
    local = resolve(str(BUNDLED)).weights          # the same files named as a folder: no default pair
    assert resolve_compare("", local) is None
    chosen = resolve_compare(str(BUNDLED_PAIR), local)
    assert chosen is not None and chosen.weights.source["kind"] == "local"


def test_two_named_reviewers_agreement_equals_scikit_learn_and_statsmodels(tmp_path):
    """#35: two (then three) reviewers flag the same views in a real SQLite file; Cohen's kappa per pair equals
    scikit-learn's cohen_kappa_score, Fleiss' kappa equals statsmodels' fleiss_kappa, each with its shared views
    and an interval around it; fewer than 10 shared views give a note, not a number."""
    from sklearn.metrics import cohen_kappa_score
    from statsmodels.stats.inter_rater import aggregate_raters
    from statsmodels.stats.inter_rater import fleiss_kappa as statsmodels_fleiss

    from mrnet.sets.flags import MIN_SHARED
    rng = np.random.default_rng(5)
    store = FlagStore(tmp_path / "flags.sqlite")
    truth = rng.choice(["on", "off", "unsure"], 40, p=[0.5, 0.4, 0.1])
    given = {}
    for reviewer, noise in (("ada", 0.1), ("grace", 0.3), ("alan", 0.5)):
        given[reviewer] = [t if rng.random() > noise else str(rng.choice(["on", "off", "unsure"])) for t in truth]
        for i, verdict in enumerate(given[reviewer]):
            store.add(Flag("phantom", "valid", f"{i:04d}", "acl", "sagittal", 3, "shapley", verdict, "", "w",
                           reviewer=reviewer))
    store.add(Flag("phantom", "valid", "0000", "acl", "sagittal", 3, "shapley", "off", "", "w", reviewer="ada"))
    given["ada"][0] = "off"  # judged again: the latest verdict counts
    for i in range(MIN_SHARED - 1):  # another method with too few shared views
        for reviewer in ("ada", "grace"):
            store.add(Flag("phantom", "valid", f"{i:04d}", "acl", "sagittal", 3, "exact", "on", "", "w", reviewer=reviewer))
    rows = {r["method"]: r for r in store.agreement()}
    shapley = rows["shapley"]
    assert shapley["reviewers"]["ada"]["on"] == given["ada"].count("on")
    for pair in shapley["pairs"]:
        expected = cohen_kappa_score(given[pair["a"]], given[pair["b"]])
        assert pair["n"] == 40 and pair["kappa"] == pytest.approx(expected)
        assert pair["low"] <= pair["kappa"] <= pair["high"]
    table, _ = aggregate_raters(np.array([given[r] for r in ("ada", "grace", "alan")]).T)
    assert shapley["fleiss"]["kappa"] == pytest.approx(statsmodels_fleiss(table, method="fleiss"))
    assert shapley["fleiss"]["n"] == 40 and shapley["fleiss"]["reviewers"] == 3
    exact = rows["exact"]
    assert "kappa" not in exact["pairs"][0] and exact["pairs"][0]["n"] == MIN_SHARED - 1
    text = mrnet_cli("flags", "summary", "--db", tmp_path / "flags.sqlite")
    assert text.returncode == 0 and "Cohen's kappa, ada & grace:" in text.stdout
    assert f"{MIN_SHARED - 1} shared views: fewer than {MIN_SHARED}, no kappa" in text.stdout


def test_users_file_named_logins_and_one_sentence_for_a_bad_file(tmp_path):
    """MRNET_USERS: `users add` writes scrypt hashes (the password asked twice, never an argument); each reviewer
    logs in with their own password; a malformed line, a name given twice or a missing file is one sentence."""
    from mrnet.app.access import Logins, ThrottledLogin, parse_users, read_users
    from mrnet.core.errors import MRNetError
    users = tmp_path / "users.txt"
    for name, password in (("ada", "lovelace-1815"), ("grace", "hopper-1906")):
        run = subprocess.run([sys.executable, "-m", "mrnet", "users", "add", name, "--file", str(users)], cwd=ROOT,
                             input=f"{password}\n{password}\n", capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
    assert "lovelace" not in users.read_text() and users.read_text().count(":scrypt$") == 2
    login = ThrottledLogin(logins=Logins(read_users(str(users))))
    check = lambda n, p: run_async(login.check(n, p))  # noqa: E731 - a worker's Playwright holds the main loop
    assert check("ada", "lovelace-1815") and check("grace", "hopper-1906")
    assert not check("ada", "hopper-1906") and not check("nobody", "lovelace-1815")
    differ = subprocess.run([sys.executable, "-m", "mrnet", "users", "add", "alan", "--file", str(users)], cwd=ROOT,
                            input="turing-1912\nturing-1913\n", capture_output=True, text=True, timeout=120)
    assert differ.returncode == 2 and "The two passwords differ" in differ.stderr and "alan" not in users.read_text()
    for text, said in (("ada\n", "line 1 is not `name:hash`"), ("ada:plain-password\n", "line 1 is not `name:hash`"),
                       (users.read_text() + users.read_text().splitlines()[0] + "\n", "is given twice (line 3)"),
                       ("bad\x1bname:" + users.read_text().split(":", 1)[1], "line 1 is not `name:hash`")):
        with pytest.raises(MRNetError, match=re.escape(said)):
            parse_users(text)
    with pytest.raises(MRNetError, match="cannot be read"):
        read_users(str(tmp_path / "missing.txt"))
