import itertools
import math

import numpy as np
import pytest
import torch

from mrnet import MRNetError, analyze, load_exam, load_weights
from mrnet.core.analysis import fuse, sigmoid
from mrnet.core.compute import compute_for
from mrnet.core.config import DEFAULT_METHOD
from mrnet.core.explain import METHODS, classic_cam, exact_attribution, overlay, shapley_attribution, shapley_shares
from mrnet.core.model import to_input
from mrnet.core.render import Renderer
from mrnet.toolchain.bench import blog_return_cam


@pytest.fixture(scope="module")
def fp32_analysis(random_weights, small_exam_files):
    weights = load_weights(random_weights)
    exam = load_exam(sorted(small_exam_files.glob("*.npy")))
    return analyze(exam, weights, compute_for("cpu", "fp32")), weights, exam


def test_the_slice_contributions_sum_to_the_logit(fp32_analysis):
    analysis, _, _ = fp32_analysis
    for task, result in analysis.tasks.items():
        for plane, r in result.planes.items():
            total = float(np.sum(r.contributions, dtype=np.float64)) + r.bias
            assert math.isclose(total, r.logit, rel_tol=1e-4, abs_tol=1e-6), (task, plane, total, r.logit)
            # the default method's maps themselves carry the contributions: m_s = mean(M_s)
            np.testing.assert_allclose(r.maps[DEFAULT_METHOD].mean(axis=(1, 2)), r.contributions, rtol=1e-5, atol=1e-6)
            for name in (m for m, spec in METHODS.items() if spec.additive):  # every additive method adds up
                total = float(r.maps[name].mean(axis=(1, 2)).sum(dtype=np.float64)) + r.bias
                assert math.isclose(total, r.logit, rel_tol=1e-4, abs_tol=1e-5), (name, task, plane)


def test_exact_attribution_direct_definition():
    g = torch.Generator().manual_seed(0)
    features = torch.rand(6, 256, 7, 7, generator=g)
    weight = torch.randn(256, generator=g)
    pooled = features.mean(dim=(2, 3))
    maps, contributions = exact_attribution(features, pooled, weight)
    winners = pooled.argmax(dim=0)
    for s in range(6):
        owned = (winners == s).nonzero().flatten()
        expected = (weight[owned, None, None] * features[s, owned]).sum(0)
        torch.testing.assert_close(maps[s], expected, rtol=1e-5, atol=1e-5)
    head = float(weight @ pooled.max(dim=0).values)
    assert math.isclose(float(contributions.sum()), head, rel_tol=1e-5)


def brute_force_shapley(pooled: np.ndarray) -> np.ndarray:
    """Shapley values of the max game by enumerating every order of the slices."""
    n = len(pooled)
    out = np.zeros_like(pooled)
    for order in itertools.permutations(range(n)):
        best = np.zeros(pooled.shape[1])
        for s in order:
            gained = np.maximum(best, pooled[s])
            out[s] += gained - best
            best = gained
    return out / math.factorial(n)


def test_shapley_shares_equal_the_brute_force_values_and_the_known_cases():
    rng = np.random.default_rng(3)
    pooled = rng.random((5, 6))
    pooled[3, 2] = pooled[1, 2]                      # a tie
    pooled[:, 4] = 0.0                               # a channel no slice holds
    np.testing.assert_allclose(shapley_shares(torch.from_numpy(pooled)).numpy(), brute_force_shapley(pooled), atol=1e-12)
    # by hand: values 3, 1, 0 -> 3 - 1 + (1 - 0) / 2 = 2.5, (1 - 0) / 2 = 0.5, 0
    torch.testing.assert_close(shapley_shares(torch.tensor([[3.0], [1.0], [0.0]])), torch.tensor([[2.5], [0.5], [0.0]]))
    # equal slices split evenly; one slice alone holding the channel keeps it all
    torch.testing.assert_close(shapley_shares(torch.full((4, 1), 2.0)), torch.full((4, 1), 0.5))
    torch.testing.assert_close(shapley_shares(torch.tensor([[0.0], [7.0], [0.0]])), torch.tensor([[0.0], [7.0], [0.0]]))


def test_shapley_attribution_adds_up_and_keeps_the_channels_a_slice_nearly_ties_for():
    g = torch.Generator().manual_seed(1)
    features = torch.rand(4, 8, 7, 7, generator=g, dtype=torch.float64)
    weight = torch.randn(8, generator=g, dtype=torch.float64)
    features[1, 0] = features[2, 0] * 1.01           # channel 0: slice 1 beats slice 2 by 1 %, the others hold none
    features[[0, 3], 0] = 0.0
    pooled = features.mean(dim=(2, 3))
    maps, contributions = shapley_attribution(features, pooled, weight)
    torch.testing.assert_close(maps.mean(dim=(1, 2)), contributions)
    assert math.isclose(float(contributions.sum()), float(weight @ pooled.max(dim=0).values), rel_tol=1e-12)
    # exact attribution gives slice 2 nothing of channel 0; Shapley gives it nearly half (the 1 % gap aside)
    head = torch.zeros(8, dtype=torch.float64)
    head[0] = 1.0
    exact_share = exact_attribution(features, pooled, head)[1]
    shapley_share = shapley_attribution(features, pooled, head)[1]
    assert exact_share[2] == 0 and shapley_share[2] > 0.45 * float(pooled[:, 0].max())
    # a logit that depends on one slice only: every method that adds up gives that slice everything
    lone = torch.zeros(4, 8, 7, 7, dtype=torch.float64)
    lone[2] = features[2]
    for attribution in (exact_attribution, shapley_attribution):
        _, c = attribution(lone, lone.mean(dim=(2, 3)), weight)
        assert c[2] == pytest.approx(float(weight @ lone[2].mean(dim=(1, 2)))) and not c[[0, 1, 3]].any()


def test_classic_cam_equals_the_blog_formula(fp32_analysis):
    analysis, weights, exam = fp32_analysis
    entry, model = weights.for_plane("sagittal")[0]
    task_index = entry.tasks.index("acl")
    x = to_input(exam.volumes["sagittal"], weights.config.normalization.mean, weights.config.normalization.std)
    with torch.no_grad():
        f = model.forward_features(x).numpy()
    w = model.classifier.weight.detach().numpy()
    # the blog's formula, in numpy, on the 7x7 maps
    for s in range(f.shape[0]):
        cam = w[task_index].dot(f[s].reshape(256, 49)).reshape(7, 7)
        cam = cam - cam.min()
        cam = cam / cam.max()
        np.testing.assert_allclose(analysis.tasks["acl"].planes["sagittal"].maps["classic"][s], cam, rtol=1e-4, atol=1e-5)
    # and the upsampled uint8 maps against the blog's own function (it truncates to uint8 before resizing)
    blog = np.stack(blog_return_cam(f, w, [task_index]))
    ours = Renderer(analysis).cam_volume("acl", "sagittal", "classic")
    assert ours.shape == blog.shape == (12, 256, 256)
    assert np.abs(ours.astype(int) - blog.astype(int)).max() <= 2


def test_classic_cam_flat_map_is_zero():
    features = torch.ones(2, 4, 7, 7)
    assert classic_cam(features, torch.ones(4)).abs().max() == 0


def test_overlay_blend():
    gray = np.full((2, 256, 256), 100, np.uint8)
    cam = np.zeros((2, 256, 256), np.uint8)
    assert overlay(gray, cam, 0.0).tolist() == np.repeat(gray[..., None], 3, axis=3).tolist()
    full = overlay(gray, cam, 1.0)
    assert full.shape == (2, 256, 256, 3) and full.dtype == np.uint8
    assert tuple(full[0, 0, 0]) == (0, 0, 128)  # JET at 0 is dark blue, in RGB order
    mid = overlay(gray, cam, 0.5)
    assert tuple(mid[0, 0, 0]) == (50, 50, 114)


def test_analysis_report_and_top_slice(fp32_analysis):
    analysis, _, _ = fp32_analysis
    report = analysis.report()
    assert set(report["tasks"]) == {"abnormal", "acl", "meniscus"}
    assert "not for diagnosis" in report["disclaimer"].lower()
    for task in report["tasks"].values():
        assert task["fusion"] == "mean-logit"  # the random weights carry no fusion coefficients
        # mean-logit fusion: the decisive plane is the one with the largest logit
        assert task["decisive_plane"] == max(task["planes"], key=lambda p: task["planes"][p]["logit"])
        for plane in task["planes"].values():
            assert plane["top_slice"] == int(np.argmax(plane["slice_contributions"]))
            assert math.isclose(plane["probability"], sigmoid(plane["logit"]), rel_tol=1e-5)
    top = analysis.top_slices("acl", k=4)
    assert len(top) == 4 and top[0][2] >= top[-1][2]
    cams = Renderer(analysis).cam_volume("acl", "axial", "exact")
    assert cams.dtype == np.uint8 and cams.shape == (12, 256, 256)
    with pytest.raises(MRNetError, match="Unknown CAM method"):
        Renderer(analysis).cam_volume("acl", "axial", "gradcam")


def test_fusion_logistic_and_fallback():
    spec = {"acl": {"intercept": -1.0, "coef": {"axial": 0.5, "coronal": 1.0, "sagittal": 2.0}}}
    logits = {"axial": 1.0, "coronal": -1.0, "sagittal": 0.5}
    p, how, terms = fuse("acl", logits, spec)
    assert how == "logistic" and math.isclose(p, sigmoid(-1.0 + 0.5 - 1.0 + 1.0))
    assert terms == {"axial": 0.5, "coronal": -1.0, "sagittal": 1.0}  # sagittal decides
    p, how, terms = fuse("acl", {"sagittal": 0.5, "coronal": -1.5}, spec)  # a plane is missing
    assert how == "mean-logit" and math.isclose(p, sigmoid(-0.5)) and max(terms, key=terms.get) == "sagittal"
    p, how, _ = fuse("meniscus", logits, spec)  # no coefficients for this task
    assert how == "mean-logit"


def test_missing_planes_are_fine(random_weights, small_exam_files):
    exam = load_exam([small_exam_files / "sagittal.npy"])
    analysis = analyze(exam, load_weights(random_weights), compute_for("cpu", "fp32"))
    assert list(analysis.tasks["acl"].planes) == ["sagittal"]
    assert analysis.report()["exam"]["missing_planes"] == ["axial", "coronal"]


def test_cam_functions_take_every_task_at_once():
    g = torch.Generator().manual_seed(1)
    features, weights = torch.rand(5, 256, 7, 7, generator=g), torch.randn(3, 256, generator=g)
    pooled = features.mean(dim=(2, 3))
    maps, contributions = exact_attribution(features, pooled, weights)
    assert maps.shape == (3, 5, 7, 7) and contributions.shape == (3, 5)
    for t in range(3):
        torch.testing.assert_close(maps[t], exact_attribution(features, pooled, weights[t])[0])
        torch.testing.assert_close(classic_cam(features, weights)[t], classic_cam(features, weights[t]))


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_a_long_series_in_parts_gives_the_same_analysis_bit_for_bit(random_weights, monkeypatch, precision):
    """analyze() runs a long series through the convolutions SLICES_AT_ONCE slices at a time (it bounds memory):
    the logits, stem statistics and every map equal those of one batch."""
    from mrnet.core import analysis as analysis_module
    from mrnet.core.analysis import analyze
    from mrnet.core.compute import bf16_supported, compute_for
    from mrnet.core.exam import Exam
    from mrnet.core.weights import load_weights
    if precision == "bf16" and not bf16_supported():
        pytest.skip("this CPU has no native bf16")
    rng = np.random.default_rng(3)
    exam = Exam(volumes={"sagittal": rng.integers(0, 255, (13, 256, 256), dtype=np.uint8)})
    weights, compute = load_weights(random_weights), compute_for("cpu", precision)
    monkeypatch.setattr(analysis_module, "SLICES_AT_ONCE", 5)     # 5 + 5 + 3
    parts = analyze(exam, weights, compute)
    monkeypatch.setattr(analysis_module, "SLICES_AT_ONCE", 1000)  # one batch
    whole = analyze(exam, weights, compute)
    for task, result in whole.tasks.items():
        a, b = result.planes["sagittal"], parts.tasks[task].planes["sagittal"]
        assert a.logit == b.logit and np.array_equal(a.pooled, b.pooled)
        assert all(np.array_equal(a.maps[m], b.maps[m]) for m in a.maps)
    assert whole.ood == parts.ood
