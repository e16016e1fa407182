"""bf16 is used only where the CPU has native bf16 and it agrees with fp32 on the bundled weights."""
import pytest
import torch

from mrnet import analyze, load_exam
from mrnet.core.compute import bf16_supported, compute_for
from mrnet.core.hub import BUNDLED, resolve
from mrnet.sets.samples import SAMPLES, sample_file


@pytest.mark.skipif(not bf16_supported(), reason="this CPU has no native bf16: inference runs in fp32")
@pytest.mark.parametrize("sample", SAMPLES, ids=[s.key for s in SAMPLES])
def test_bf16_probabilities_close_to_fp32(sample):
    """Fused probabilities within 0.005 of fp32, each plane's within 0.01 (a plane's logit near 0 moves most:
    the 4,000-step axial and coronal weights put one at 0.317 / 0.322 on the normal phantom)."""
    weights = resolve("").weights
    assert weights.source["kind"] == "bundled" and BUNDLED.is_dir()
    exam = load_exam([sample_file(sample)])
    fp32 = analyze(exam, weights, compute_for("cpu", "fp32"))
    bf16 = analyze(exam, weights, compute_for("cpu", "bf16"))
    assert bf16.precision == "bf16"
    for task in fp32.tasks:
        assert abs(fp32.tasks[task].probability - bf16.tasks[task].probability) <= 0.005
        for plane, r in fp32.tasks[task].planes.items():
            assert abs(r.probability - bf16.tasks[task].planes[plane].probability) <= 0.01
            # (the top slice may differ where two slices nearly tie for a channel's max: the exact
            # attribution gives a channel to one slice, so bf16 rounding can move it)


def test_auto_precision_follows_the_cpu():
    weights = resolve("").weights
    exam = load_exam([sample_file(SAMPLES[-1])])
    assert analyze(exam, weights, compute_for("cpu")).precision == ("bf16" if bf16_supported() else "fp32")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here: the CUDA precisions are checked where one exists")
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_cuda_autocast_close_to_cpu_fp32(precision):
    """On a GPU, bf16 and fp16 autocast hold the same tolerances against fp32 (on the CPU) as bf16 on the CPU."""
    weights = resolve("").weights
    for sample in SAMPLES:
        exam = load_exam([sample_file(sample)])
        reference = analyze(exam, weights.to("cpu"), compute_for("cpu", "fp32"))
        cuda = analyze(exam, weights.to("cuda"), compute_for("cuda", precision))
        assert cuda.precision == precision
        for task in reference.tasks:
            assert abs(reference.tasks[task].probability - cuda.tasks[task].probability) <= 0.005, (sample.key, task)
            for plane, r in reference.tasks[task].planes.items():
                assert abs(r.probability - cuda.tasks[task].planes[plane].probability) <= 0.01, (sample.key, task, plane)
    weights.to("cpu")
