"""The deletion test on cases whose answer is known, and its agreement with the model's own forward pass."""
import numpy as np
import pytest

from mrnet.core.analysis import sigmoid
from mrnet.toolchain.faithfulness import (
    RANDOM_ORDERS,
    deletion_auc,
    deletion_curve,
    deletion_scores,
    insertion_aucs,
    insertion_curve,
    rankings,
)


def one_decisive_slice():
    """5 slices, 4 channels; the head reads channel 0 only, and slice 2 alone carries it."""
    pooled = np.full((5, 4), 0.1)
    pooled[2, 0] = 5.0
    weight = np.array([1.0, 0.0, 0.0, 0.0])
    contributions = np.zeros(5)
    contributions[2] = 5.0 - 0.0  # exact attribution: slice 2 wins channel 0 (the only channel the head reads)
    return pooled, weight, contributions


def test_removing_the_decisive_slice_first_drops_the_probability_at_once():
    pooled, weight, contributions = one_decisive_slice()
    curve = deletion_curve(pooled, weight, 0.0, np.array([2, 0, 1, 3, 4]))
    np.testing.assert_allclose(curve, np.array([sigmoid(x) for x in (5.0, 0.1, 0.1, 0.1, 0.1)]))
    assert deletion_auc(curve) == pytest.approx(np.mean(curve))
    late = deletion_curve(pooled, weight, 0.0, np.array([0, 1, 3, 4, 2]))
    assert deletion_auc(late) > deletion_auc(curve)  # the decisive slice removed last: the worst possible order
    np.testing.assert_allclose(late, np.full(5, sigmoid(5.0)))


def test_inserting_the_decisive_slice_first_gives_the_whole_probability_at_once():
    """The insertion test: the exam rebuilt from the first slice of an order; its last point is the whole exam."""
    pooled, weight, contributions = one_decisive_slice()
    first = insertion_curve(pooled, weight, 0.0, np.array([2, 0, 1, 3, 4]))
    np.testing.assert_allclose(first, np.full(5, sigmoid(5.0)))
    last = insertion_curve(pooled, weight, 0.0, np.array([0, 1, 3, 4, 2]))
    np.testing.assert_allclose(last, np.array([sigmoid(x) for x in (0.1, 0.1, 0.1, 0.1, 5.0)]))
    scores = insertion_aucs(pooled, weight, 0.0, {"exact": contributions})
    assert scores["exact"] == pytest.approx(sigmoid(5.0)) and scores["classic"] == pytest.approx(scores["exact"])
    assert np.mean(last) < scores["random"] < scores["exact"]   # random orders sit between the best and the worst


def test_exact_attribution_ranks_best_and_random_sits_between():
    pooled, weight, contributions = one_decisive_slice()
    scores = deletion_scores(pooled, weight, 0.0, {"exact": contributions})
    assert scores["exact"] == pytest.approx(np.mean(np.array([sigmoid(x) for x in (5.0, 0.1, 0.1, 0.1, 0.1)])))
    assert scores["classic"] == pytest.approx(scores["exact"])  # here both rank slice 2 first
    assert scores["exact"] < scores["random"] < deletion_auc(np.full(5, sigmoid(5.0)))
    assert len(rankings(pooled, weight, {"exact": contributions})["random"]) == RANDOM_ORDERS


def test_classic_cam_can_rank_a_slice_that_decides_nothing_first():
    """A slice with a large score on a channel another slice beats: classic CAM ranks it first, exact does not."""
    pooled = np.array([[4.0, 0.0], [5.0, 3.0], [0.0, 0.0]])
    weight = np.array([1.0, 1.0])
    # MRNet's max per channel: channel 0 from slice 1 (5), channel 1 from slice 1 (3): slice 1 decides all
    contributions = np.array([0.0, 8.0, 0.0])
    order = rankings(pooled, weight, {"exact": contributions})
    assert list(order["exact"][:1]) == [1] and list(order["classic"][:2]) == [1, 0]
    pooled[1] = [3.0, 6.0]   # now slice 0's channel 0 (4) wins, slice 1 wins channel 1
    contributions = np.array([4.0, 6.0, 0.0])
    scores = deletion_scores(pooled, weight, 0.0, {"exact": contributions})
    assert scores["exact"] <= scores["classic"]


def test_the_curve_starts_at_the_models_own_probability(random_weights, small_exam_files):
    from mrnet import analyze, load_exam
    from mrnet.core.compute import compute_for
    from mrnet.core.weights import load_weights
    weights = load_weights(random_weights)
    analysis = analyze(load_exam([small_exam_files]), weights, compute_for("cpu", "fp32"))
    model = weights.for_plane("sagittal")[0][1]
    for k, task in enumerate(weights.config.tasks):
        r = analysis.tasks[task].planes["sagittal"]
        w = model.classifier.weight[k].detach().numpy()
        curve = deletion_curve(r.pooled, w, r.bias, np.argsort(-r.contributions))
        assert curve[0] == pytest.approx(r.probability, abs=1e-5)
        assert len(curve) == len(r.contributions)


def test_similarity_measures_on_known_cases():
    from mrnet.toolchain.faithfulness import spearman, ssim
    rng = np.random.default_rng(0)
    x = rng.random((4, 7, 7))
    assert spearman(x, x) == pytest.approx(1.0) and spearman(x, np.exp(3 * x)) == pytest.approx(1.0)  # monotone
    assert spearman(x, -x) == pytest.approx(-1.0) and spearman(x, np.zeros_like(x)) == 0.0
    assert abs(spearman(x, rng.random((4, 7, 7)))) < 0.2
    img = rng.random((64, 64))
    assert ssim(img, img) == pytest.approx(1.0) and ssim(img, 1 - img) < 0
    assert ssim(img, rng.random((64, 64))) < 0.2


def test_randomizing_a_layer_is_seeded_and_changes_only_that_layer(random_weights):
    import copy

    from mrnet.core.weights import load_weights
    from mrnet.toolchain.faithfulness import CASCADE, randomize
    model = load_weights(random_weights).for_plane("axial")[0][1]
    a, b = copy.deepcopy(model), copy.deepcopy(model)
    randomize(a, "conv3", seed=1)
    randomize(b, "conv3", seed=1)
    assert torch_equal(a.features[6].weight, b.features[6].weight)
    assert not torch_equal(a.features[6].weight, model.features[6].weight)
    assert torch_equal(a.features[8].weight, model.features[8].weight) and torch_equal(a.classifier.weight, model.classifier.weight)
    assert CASCADE[0] == "head" and CASCADE[-1] == "conv1"


def torch_equal(x, y) -> bool:
    import torch
    return bool(torch.equal(x, y))


def test_the_randomization_check_in_evaluate(tmp_path, random_weights):
    """On a tiny phantom set: every method and layer gets a similarity, the trained (here: random-init) model's
    maps equal themselves before any randomization, and the verdict is one of pass/fail."""
    from mrnet import analyze
    from mrnet.core.exam import Exam
    from mrnet.core.explain import METHODS
    from mrnet.core.weights import load_weights
    from mrnet.phantom import write_dataset
    from mrnet.toolchain.dataset import read_split
    from mrnet.toolchain.evaluate import randomization
    write_dataset(tmp_path / "set", 0, 2, seed=31, progress=False)
    split, weights = read_split(tmp_path / "set", "valid"), load_weights(random_weights)
    analysed = [analyze(Exam(volumes={"sagittal": split.volume("sagittal", i)}), weights) for i in range(2)]
    report = randomization(analysed, weights, progress=False)
    assert report["n"] == 2 and set(report["layers"]) == set(METHODS)
    for method, layers in report["layers"].items():
        assert list(layers) == ["head", "conv5", "conv4", "conv3", "conv2", "conv1"]
        assert all(-1 <= v["spearman"] <= 1 and -1 <= v["ssim"] <= 1 for v in layers.values())
        assert layers["conv1"]["spearman"] < 0.9  # everything random: the maps are not the trained ones
    assert set(report["verdict"].values()) <= {"pass", "fail"} and set(report["chance"]) == set(METHODS)


def test_evaluate_on_a_set_without_masks_skips_the_mask_measures_in_one_sentence(tmp_path, random_weights, capsys):
    """#39 bad input: real MRNet data has no lesion masks; evaluate says so once and reports the rest."""
    from mrnet.core.weights import load_weights
    from mrnet.toolchain.evaluate import run_evaluate

    from helpers import write_set
    report = run_evaluate(write_set(tmp_path / "set", n=4, slices=4), load_weights(random_weights), progress=False,
                          randomization_exams=0)
    assert report["mask_localisation"] is None and "pointing_game" not in report
    assert set(report["auc"]) == {"abnormal", "acl", "meniscus"} and report["n"] == 4
    said = capsys.readouterr().err.strip().splitlines()
    assert said == ["Mask measures skipped: this set has no lesion masks (the pointing game, AUPRC and IoU need them)."]


def test_auprc_equals_scikit_learns_and_the_best_iou_every_thresholds_best():
    from sklearn.metrics import average_precision_score

    from mrnet.toolchain.localisation import auprc_and_best_iou
    rng = np.random.default_rng(7)
    for _ in range(20):
        scores = np.round(rng.random((24, 24)), 2)  # ties, as an upsampled map has
        mask = rng.random((24, 24)) < rng.uniform(0.02, 0.4)
        mask[0, 0] = True
        ap, iou = auprc_and_best_iou(scores, mask)
        assert ap == pytest.approx(average_precision_score(mask.ravel(), scores.ravel()))
        assert iou == pytest.approx(max(((scores >= t) & mask).sum() / ((scores >= t) | mask).sum()
                                        for t in np.unique(scores)))
    perfect = auprc_and_best_iou(mask.astype(float), mask)
    assert perfect == (1.0, 1.0)


def test_inside_the_top_slice_removing_the_maps_pixels_first_takes_more_evidence_than_its_reverse():
    """The bundled weights on the ACL-tear sample's decisive plane: the pixels Shapley's map ranks highest, removed
    first, take more of the top slice's own evidence away than random pixels, and random more than the same map
    read backwards (its least salient pixels first)."""
    from mrnet.core.analysis import analyze
    from mrnet.core.hub import resolve
    from mrnet.inputs.load import load_exam
    from mrnet.sets.samples import BY_KEY, sample_file
    from mrnet.toolchain.faithfulness import within_slice_scores
    weights = resolve("").weights
    exam = load_exam([sample_file(BY_KEY["phantom-acl"])])
    task = analyze(exam, weights).tasks["acl"]
    result, plane = task.planes[task.decisive_plane], task.decisive_plane
    entry, model = weights.for_plane(plane)[0]
    top, norm = result.top_slice, weights.config.normalization
    shapley = result.maps["shapley"][top]
    scores = within_slice_scores(model, model.classifier.weight[entry.tasks.index("acl")].detach().float().numpy(),
                                 result.pooled, top, exam.volumes[plane][top],
                                 {"shapley": shapley, "backwards": -shapley}, norm.mean, norm.std)
    assert scores is not None and set(scores) == {"shapley", "backwards", "random"}
    assert scores["shapley"] < scores["random"] < scores["backwards"], scores
