"""Phantoms: determinism, MRNet layout, label logic, mask alignment; a tiny end-to-end train and evaluate."""
import json

import numpy as np
import pytest
import torch

from mrnet.core.config import MASK_BITS, PLANES, TASKS
from mrnet.core.explain import METHODS
from mrnet.core.model import MRNet
from mrnet.core.pointing import task_mask
from mrnet.phantom import ACL_OEDEMA, CONTRAST, PREVALENCE, TEAR_SIGNAL, choose_labels, generate_exam
from mrnet.toolchain.train import fold_batchnorm, with_batchnorm

from helpers import mrnet_cli

pytestmark = pytest.mark.slow  # real servers, training or subprocesses: `make test-fast` skips them


def test_deterministic_per_seed():
    a, b, c = generate_exam(7), generate_exam(7), generate_exam(8)
    for plane in PLANES:
        np.testing.assert_array_equal(a.volumes[plane], b.volumes[plane])
        np.testing.assert_array_equal(a.masks[plane], b.masks[plane])
    assert a.labels == b.labels
    assert any(a.volumes[p].shape != c.volumes[p].shape or (a.volumes[p] != c.volumes[p]).any() for p in PLANES)


def test_shapes_and_slice_counts():
    for seed in range(5):
        ph = generate_exam(seed)
        for plane in PLANES:
            v, m = ph.volumes[plane], ph.masks[plane]
            assert v.dtype == np.uint8 and v.shape[1:] == (256, 256) and 20 <= v.shape[0] <= 40
            assert m.shape == v.shape and m.dtype == np.uint8


def test_label_logic_and_prevalence():
    labels = [choose_labels(np.random.default_rng(s)) for s in range(3000)]
    for lab, lesions in labels:
        assert lab["acl"] == ("acl_tear" in lesions) and lab["meniscus"] == ("meniscal_tear" in lesions)
        assert lab["abnormal"] == int(bool(lesions))
        if lab["acl"] or lab["meniscus"]:
            assert lab["abnormal"] == 1
    for task in TASKS:
        rate = np.mean([lab[task] for lab, _ in labels])
        assert abs(rate - PREVALENCE[task]) < 0.04, (task, rate)


@pytest.mark.parametrize("seed", [900000, 900009, 900001])
def test_masks_sit_on_the_lesion_signal(seed):
    """The lesion mask marks pixels that are bright on the fluid-sensitive sagittal series (fluid-like
    oedema / tear signal), brighter than the rest of the knee on the same slices."""
    ph = generate_exam(seed)
    v, m = ph.volumes["sagittal"], ph.masks["sagittal"]
    for task in ("acl", "meniscus"):
        if not ph.labels[task]:
            assert not task_mask(m, task).any()
            continue
        lesion = task_mask(m, task)
        assert lesion.any()
        slices = np.unique(np.nonzero(lesion)[0])
        inside = v[slices][lesion[slices]].astype(float).mean()
        body = v[slices][v[slices] > 10].astype(float).mean()
        assert inside > body + 20, (task, inside, body)
    assert CONTRAST["sagittal"][ACL_OEDEMA] > 0.5 and CONTRAST["sagittal"][TEAR_SIGNAL] > 0.5


def test_negative_exam_has_no_mask():
    ph = generate_exam(900004)
    assert ph.labels == {"abnormal": 0, "acl": 0, "meniscus": 0}
    assert all(not m.any() for m in ph.masks.values())
    assert set(MASK_BITS) == {"acl", "meniscus", "other"}


def run(*args):
    out = mrnet_cli(*args, timeout=600)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.long
def test_layout_tiny_train_and_evaluate(tmp_path):
    data, weights = tmp_path / "data", tmp_path / "weights"
    counts = json.loads(run("phantom", "--out", data, "--n-train", 4, "--n-valid", 3, "--seed", 11))
    assert counts["train"]["n"] == 4 and counts["valid"]["n"] == 3
    for split, n in (("train", 4), ("valid", 3)):
        for plane in PLANES:
            assert sorted(f.name for f in (data / split / plane).iterdir()) == [f"{i:04d}.npy" for i in range(n)]
            assert len(list((data / "masks" / split / plane).iterdir())) == n
        for task in TASKS:
            rows = (data / f"{split}-{task}.csv").read_text().split()
            assert [r.split(",")[0] for r in rows] == [f"{i:04d}" for i in range(n)]
            assert all(r.split(",")[1] in ("0", "1") for r in rows)
        abnormal = [int(r.split(",")[1]) for r in (data / f"{split}-abnormal.csv").read_text().split()]
        for task in ("acl", "meniscus"):
            labels = [int(r.split(",")[1]) for r in (data / f"{split}-{task}.csv").read_text().split()]
            assert all(a >= t for a, t in zip(abnormal, labels))
    # same seed, same files: the layout is deterministic
    first = np.load(data / "train" / "axial" / "0002.npy")
    np.testing.assert_array_equal(first, generate_exam(11 * 100000 + 2).volumes["axial"])
    metrics = json.loads(run("train", "--data", data, "--out", weights, "--epochs", 1, "--slice-steps", 2,
                             "--slice-batch", 4, "--no-progress"))
    assert set(metrics["valid"]) == set(TASKS)
    config = json.loads((weights / "config.json").read_text())
    assert [m["plane"] for m in config["models"]] == list(PLANES)
    assert set(config["fusion"]) == set(TASKS) and "training_command" in config["provenance"]
    made = json.loads((data / "phantom.json").read_text())
    assert made["seed"] == 11 and made["counts"]["train"]["n"] == 4
    assert config["provenance"]["trained_on"].startswith("Synthetic knee phantoms") and "seed 11" in \
        config["provenance"]["trained_on"]
    assert "synthetic phantoms" in config["provenance"]["intended_use"] and "Not for diagnosis" in \
        config["provenance"]["intended_use"]
    assert (weights / "README.md").read_text().startswith("---\n")
    first = run("evaluate", "--data", data, "--weights", weights, "--randomization-exams", 0)
    (tmp_path / "first.json").write_text(first)
    report = json.loads(run("evaluate", "--data", data, "--weights", weights, "--record", "--randomization-exams", 2,
                            "--compare", f"earlier run={tmp_path / 'first.json'}"))
    assert report["n"] == 3 and set(report["auc"]) == set(TASKS)
    assert "histogram_baseline_auc" in report
    labels = {t: (data / f"valid-{t}.csv").read_text().split() for t in TASKS}
    positives = sum(int(r.split(",")[1]) for rows in labels.values() for r in rows)
    assert positives > 0 and report["pointing_game_n"] == positives  # every lesion-positive (exam, task) pair
    assert set(report["pointing_game"]) == set(METHODS) and 0 <= report["pointing_game_ceiling"] <= 1
    assert set(report["deletion_auc"]) == set(TASKS) and set(report["insertion_auc"]) == set(TASKS)
    for task, scores in report["within_slice_auc"].items():  # inside the top slice: the same pairs, maps and random
        assert scores is None or (report["deletion_auc"][task] and set(scores) == {*METHODS, "random", "n"})
    for task, scores in report["insertion_auc"].items():  # the same pairs as deletion's
        assert (scores is None) == (report["deletion_auc"][task] is None)
        assert scores is None or (scores["n"] == report["deletion_auc"][task]["n"] and 0 <= scores["random"] <= 1)
    for scores in filter(None, report["deletion_auc"].values()):  # tasks with a true positive in 3 exams
        assert set(scores) == {*METHODS, "random", "n"} and all(0 <= scores[m] <= 1 for m in
                                                                    (*METHODS, "random"))
    found = report["mask_localisation"]  # the map's pixels against the whole lesion mask of its top slice
    assert found["n"] == sum(found["n_per_plane"].values()) > 0 and 0 < found["random_auprc"] < 1
    for method in METHODS:
        assert 0 <= found["best_iou"][method]["all"] <= 1 and found["random_auprc"] / 10 <= found["auprc"][method]["all"] <= 1
    assert set(report["pointing_game_by_tolerance"]) == {"15", "10"}
    assert report["pointing_game_by_tolerance"]["15"] == {m: round(v, 4) for m, v in report["pointing_game"].items()} \
        | {"ceiling": round(report["pointing_game_ceiling"], 4)}
    # --record: the card renders what the report holds
    card = (weights / "README.md").read_text()
    assert "| AUPRC | " + " | ".join(f"{found['auprc'][m]['all']:.3f}" for m in METHODS) + " |" in card
    for px, row in report["pointing_game_by_tolerance"].items():
        assert f"| {px} px | " + " | ".join(f"{row[m]:.3f}" for m in METHODS) in card
    # the side-by-side table: this run beside the earlier one (the same weights and exams, no randomization check)
    assert "| | these weights | earlier run |" in card
    fused = report["auc"]["acl"]["fused"]
    assert f"| ROC AUC, ACL tear (fused) | {fused:.3f} | {json.loads(first)['auc']['acl']['fused']:.3f} |" in card
    assert "| randomization check, shapley / exact / classic | " + " / ".join(
        report["randomization"]["verdict"][m] for m in ("shapley", "exact", "classic")) + " | - / - / - |" in card
    check = report["randomization"]
    assert check["n"] == 2 and set(check["verdict"]) == set(METHODS)
    for method, layers in check["layers"].items():
        assert f"| {method} | {layers['head']['spearman']:.2f} / {layers['head']['ssim']:.2f} |" in card
        assert card.count(f"| {check['verdict'][method]} |") >= 1
    assert any(report["deletion_auc"].values())  # the tiny model makes at least one true positive (seeded)
    for task, scores in report["deletion_auc"].items():
        if scores:
            assert " | ".join(f"{scores[m]:.3f}" for m in (*METHODS, "random")) + f" | {scores['n']} |" in card
            inserted = report["insertion_auc"][task]
            assert " | ".join(f"{inserted[m]:.3f}" for m in (*METHODS, "random")) + f" | {inserted['n']} |" in card
            curves = report["deletion_curves"][task]
            assert all(len(c) == 21 and 0 <= min(c) <= max(c) <= 1 for c in curves.values())
    # the README's figures from the recorded evaluation: the deletion curves, and the randomization strip
    import cv2
    for kind, name in (("deletion", "deletion.png"), ("randomization", "strip.png")):
        run("figure", "--kind", kind, "--weights", weights, "--out", tmp_path / name)
    panels = sum(1 for v in report["deletion_auc"].values() if v)
    assert cv2.imread(str(tmp_path / "deletion.png")).shape[:2] == (374, 440 * panels)  # 4 x 3.4 in per panel, 110 dpi
    assert cv2.imread(str(tmp_path / "strip.png")).shape[:2] == (192 * len(METHODS), 192 * 7)  # trained + 6 layers


def test_stage1_on_slice_subsets(tmp_path):
    data, weights = tmp_path / "data", tmp_path / "weights"
    run("phantom", "--out", data, "--n-train", 3, "--n-valid", 2, "--seed", 12)
    metrics = json.loads(run("train", "--data", data, "--out", weights, "--epochs", 1, "--slice-steps", 2,
                             "--slice-batch", 8, "--subset-slices", 4, "--stage1", "subsets", "--planes", "sagittal",
                             "--no-stage1-batchnorm", "--no-progress"))
    assert set(metrics["valid"]) == set(TASKS)
    assert [m["plane"] for m in json.loads((weights / "config.json").read_text())["models"]] == ["sagittal"]


def test_stage1_batchnorm_folds_back_into_plain_alexnet():
    torch.manual_seed(0)
    model = MRNet(3).init_from_scratch()
    plain_layers = [type(m) for m in model.features]
    trained = with_batchnorm(model.features)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in trained) == 5
    x = torch.randn(6, 3, 256, 256)
    with torch.no_grad():
        trained.train()
        for _ in range(3):  # move the running statistics away from their start
            trained(x * 2 + 0.5)
        for m in trained:
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 2.0)
                m.bias.normal_()
        trained.eval()
        expected = trained(x)
        fold_batchnorm(trained)
        got = model.features(x)
    assert [type(m) for m in model.features] == plain_layers  # still plain AlexNet, now carrying the BatchNorms
    assert torch.allclose(got, expected, atol=1e-4 * float(expected.abs().max()))


def test_pointing_game_hit_and_ceiling():
    from mrnet.core.pointing import DILATE_PX, cell_centre_in_zone, hit_zone, pointing_hit
    cam = np.zeros((7, 7), np.float32)
    cam[2, 5] = 1.0                                     # peaks at cell (2, 5): centre pixel ~(91, 201)
    near, far = np.zeros((256, 256), bool), np.zeros((256, 256), bool)
    near[91 + DILATE_PX - 2, 201] = True                # a one-pixel lesion just within the tolerance
    far[91 + DILATE_PX + 3, 201] = True                 # just outside it
    assert pointing_hit(cam, hit_zone(near)) and not pointing_hit(cam, hit_zone(far))
    assert cell_centre_in_zone((7, 7), hit_zone(near)) and not cell_centre_in_zone((7, 7), hit_zone(far))
    assert not pointing_hit(np.zeros((7, 7)) - cam, hit_zone(near))  # the map's maximum, not its magnitude


@pytest.mark.long
def test_the_mask_free_recipe_learns_from_slice_labels_only(tmp_path):
    """--mask-weight 0 keeps stage 1 but uses the masks only to say which slices show a lesion: moving every
    lesion mask elsewhere within its slice leaves the trained weights unchanged bit for bit, while the default
    recipe (a per-location loss on the CAM) learns something else from the moved masks."""
    import shutil

    from safetensors.numpy import load_file
    data, moved = tmp_path / "data", tmp_path / "moved"
    run("phantom", "--out", data, "--n-train", 4, "--n-valid", 2, "--seed", 13)
    shutil.copytree(data, moved)
    for f in (moved / "masks").rglob("*.npy"):
        np.save(f, np.roll(np.load(f), (90, 70), axis=(1, 2)))  # same slices, other places
    weights = {}
    for name, folder in (("data", data), ("moved", moved)):
        for mask_weight in ("0", "1"):
            out = tmp_path / f"w-{name}-{mask_weight}"
            # the mask loss differs in stage 1 already: its exam-level epoch is left out
            run("train", "--data", folder, "--out", out, "--epochs", 1 if mask_weight == "0" else 0, "--slice-steps", 3,
                "--slice-batch", 4,
                "--planes", "sagittal", "--mask-weight", mask_weight, "--hard-negatives", 2, "--no-progress")
            weights[name, mask_weight] = load_file(out / "sagittal.safetensors")
            log = (out / "train.log").read_text()
            assert ("slice labels only" in log) == (mask_weight == "0")
            assert ("without lesion-mask supervision" in log) == (mask_weight == "0")
    def same(a, b):
        return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert same(weights["data", "0"], weights["moved", "0"])
    assert not same(weights["data", "1"], weights["moved", "1"])
    assert not same(weights["data", "0"], weights["data", "1"])
