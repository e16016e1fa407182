"""Training at scale: `--init imagenet` through torchvision's real loading path (a state dict the test builds is put
in the torch hub cache under torchvision's file name, so nothing is downloaded), `--init PATH`, `--recipe
stanford` with a command-line option winning over it, `--resume` after a kill with DataLoader workers (the result
equals an uninterrupted run's), the log file and each epoch's time."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from mrnet.core.errors import MRNetError

from server import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("phantoms") / "set"
    run = subprocess.run([sys.executable, "-m", "mrnet", "phantom", "--out", str(data), "--n-train", "4",
                          "--n-valid", "2", "--seed", "21"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    return data


def imagenet_like(seed: int = 5) -> dict:
    from torchvision.models import alexnet
    torch.manual_seed(seed)
    return alexnet(weights=None).state_dict()  # torchvision's own key names, features.* and classifier.*


def test_init_imagenet_reads_torchvisions_cached_file_and_local_files(tmp_path, monkeypatch):
    from torchvision.models import AlexNet_Weights

    from mrnet.toolchain.pretrained import initial_model
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(MRNetError, match="ImageNet AlexNet weights could not be read"):
        initial_model("imagenet", 3)  # nothing cached, no network here: one sentence naming the file to place
    state = imagenet_like()
    cached = tmp_path / "torch" / "hub" / "checkpoints" / AlexNet_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[-1]
    assert not cached.exists()  # the failed download left no partial file behind
    cached.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, cached)
    model = initial_model("imagenet", 3)
    for key, value in model.features.state_dict().items():
        assert torch.equal(value, state[f"features.{key}"])
    assert model.classifier.out_features == 3
    save_file({k: v.contiguous() for k, v in state.items()}, tmp_path / "alexnet.safetensors")
    assert torch.equal(initial_model(str(tmp_path / "alexnet.safetensors"), 1).features[0].weight,
                       state["features.0.weight"])
    save_file({"conv.weight": torch.zeros(3)}, tmp_path / "other.safetensors")
    with pytest.raises(MRNetError, match="not AlexNet's convolutions"):
        initial_model(str(tmp_path / "other.safetensors"), 1)
    (tmp_path / "pickled.pt").write_bytes(b"\x80\x04\x95 not a tensor file")
    with pytest.raises(MRNetError, match="cannot be read as plain tensors"):
        initial_model(str(tmp_path / "pickled.pt"), 1)


def train(data, out, *extra, env=None, popen=False):
    cmd = [sys.executable, "-m", "mrnet", "train", "--data", str(data), "--out", str(out), "--planes", "sagittal",
           "--no-progress", "--threads", "1", *map(str, extra)]
    env = {**os.environ, **(env or {})}
    if popen:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


@pytest.mark.long
def test_recipe_stanford_from_imagenet_with_an_option_that_wins(tiny_set, tmp_path):
    torch_home = tmp_path / "torch"
    from torchvision.models import AlexNet_Weights
    cached = torch_home / "hub" / "checkpoints" / AlexNet_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[-1]
    cached.parent.mkdir(parents=True)
    torch.save(imagenet_like(), cached)
    run = train(tiny_set, tmp_path / "w", "--recipe", "stanford", "--epochs", 1, "--workers", 1,
                env={"TORCH_HOME": str(torch_home)})
    assert run.returncode == 0, run.stderr
    log = (tmp_path / "w" / "train.log").read_text()
    assert "without lesion-mask supervision" in log and "stage 1" not in log   # the recipe: exam labels only
    history = json.loads((tmp_path / "w" / "training_history.json").read_text())["sagittal"]["history"]
    assert len(history) == 1                                                   # --epochs 1 beat the recipe's 50
    assert history[0]["lr"] == pytest.approx(1e-5) and history[0]["exams_per_s"] > 0 and history[0]["seconds"] > 0
    assert "exams/s" in log


@pytest.mark.long
def test_resume_after_a_kill_equals_an_uninterrupted_run(tiny_set, tmp_path):
    args = ("--epochs", 2, "--patience", 5, "--slice-steps", 0, "--workers", 1, "--seed", 4)  # stage 1: the next test
    whole = train(tiny_set, tmp_path / "whole", *args)
    assert whole.returncode == 0, whole.stderr

    out = tmp_path / "killed"
    proc = train(tiny_set, out, *args, popen=True)
    log, deadline = out / "train.log", time.time() + 600
    while not (log.is_file() and "sagittal epoch 1:" in log.read_text()):  # logged after its checkpoint
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read() if proc.poll() is not None else "slow"
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "sagittal.safetensors").exists()
    again = train(tiny_set, out, *args)
    assert again.returncode == 2 and "add --resume to continue it" in again.stderr
    resumed = train(tiny_set, out, *args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "sagittal: resuming after epoch" in resumed.stderr
    a, b = load_file(tmp_path / "whole" / "sagittal.safetensors"), load_file(out / "sagittal.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)   # bit for bit, on the CPU
    history = lambda p: [(h["epoch"], h["loss"], h["valid_auc"]) for h in  # noqa: E731
                         json.loads((p / "training_history.json").read_text())["sagittal"]["history"]]
    assert history(out) == history(tmp_path / "whole")
    # the card's training time is the resumed run's own, and says so
    assert "resumed from checkpoints" in (out / "README.md").read_text()
    assert "resumed from checkpoints" not in (tmp_path / "whole" / "README.md").read_text()


@pytest.mark.long
def test_resume_inside_stage_one_equals_an_uninterrupted_run(tiny_set, tmp_path):
    """Stage 1 saves its state every --checkpoint-every steps (100 by default; 10 here): a kill there loses at most
    that many steps, and --resume ends with the same weights bit for bit (hard-negative mining included, which
    draws from the model's own scores). With --stage1-positive-head (a parametrised head) the head's weights are > 0."""
    args = ("--epochs", 0, "--slice-steps", 25, "--slice-batch", 2, "--hard-negatives", 2,
            "--mask-weight", 0, "--seed", 2, "--checkpoint-every", 10, "--stage1-positive-head")
    whole = train(tiny_set, tmp_path / "whole", *args)
    assert whole.returncode == 0, whole.stderr
    out = tmp_path / "killed"
    proc = train(tiny_set, out, *args, popen=True)
    log, deadline = out / "train.log", time.time() + 600
    while not (log.is_file() and "stage 1 step 10:" in log.read_text()):
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read() if proc.poll() is not None else "slow"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    resumed = train(tiny_set, out, *args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "sagittal: stage 1 resuming after step 10" in resumed.stderr or \
        "sagittal: stage 1 resuming after step 20" in resumed.stderr  # killed after step 10's log, maybe after 20
    a, b = load_file(tmp_path / "whole" / "sagittal.safetensors"), load_file(out / "sagittal.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert a["classifier.weight"].float().min() > 0


def test_plane_slice_steps_give_one_plane_its_own_stage_one(tiny_set, tmp_path):
    """--plane-slice-steps PLANE=N: that plane's stage 1 runs N steps (its schedule spans N), the others
    --slice-steps; the plane's model is the one a run of that plane alone with --slice-steps N gives, bit for bit
    (each plane's seeds depend on the plane only). A malformed value gets one sentence."""
    common = ("--epochs", 0, "--slice-batch", 2, "--mask-weight", 0, "--seed", 3)
    mixed = train(tiny_set, tmp_path / "mixed", *common, "--planes", "axial", "sagittal", "--slice-steps", 2,
                  "--plane-slice-steps", "sagittal=5")
    assert mixed.returncode == 0, mixed.stderr
    assert "axial: stage 1, 2 steps" in mixed.stderr and "sagittal: stage 1, 5 steps" in mixed.stderr
    alone = train(tiny_set, tmp_path / "alone", *common, "--slice-steps", 5)
    assert alone.returncode == 0, alone.stderr
    a, b = load_file(tmp_path / "mixed" / "sagittal.safetensors"), load_file(tmp_path / "alone" / "sagittal.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    bad = train(tiny_set, tmp_path / "bad", "--plane-slice-steps", "knee=5")
    assert bad.returncode == 2 and "'knee=5' is not PLANE=STEPS" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("nonnegative", [False, True])
def test_refit_head_puts_mrnets_own_exam_logits_at_the_logistic_optimum(tiny_set, nonnegative):
    """--refit-head fits the head on each channel's max over an exam's slices, standardised, and folds the result
    into MRNet's linear layer. Checked from the optimality (KKT) conditions of the objective it states, not by
    fitting again: with MRNet's own exam logits s, c = w * sd and g = Z^T (sigmoid(s) - y) + l2 c,
    sum(sigmoid(s) - y) = 0 and g = 0; with weights kept >= 0, g = 0 where c > 0 and g >= 0 where c = 0."""
    from mrnet.core.compute import compute_for
    from mrnet.core.config import Normalization
    from mrnet.core.model import MRNet
    from mrnet.toolchain.dataset import read_split
    from mrnet.toolchain.train import refit_head
    tasks, plane, l2 = ["abnormal", "acl", "meniscus"], "sagittal", 2.0
    train, norm, compute = read_split(tiny_set, "train", tasks), Normalization(), compute_for("cpu", "fp32")
    torch.manual_seed(0)
    model = MRNet(len(tasks)).eval()
    refit_head(model, train, plane, tasks, l2, norm, compute, nonnegative=nonnegative)
    with torch.inference_mode():  # MRNet's own path, and the channels computed here from the conv stack
        xs = [compute.slices(train.volume(plane, i), norm) for i in range(len(train.ids))]
        logits = torch.stack([model(x) for x in xs]).double().numpy()
        channels = torch.stack([model.features(x).mean(dim=(2, 3)).amax(dim=0) for x in xs]).double().numpy()
    sd = channels.std(axis=0)
    sd[sd < 1e-6] = 1.0
    z = (channels - channels.mean(axis=0)) / sd
    weight = model.classifier.weight.detach().double().numpy()
    fitted = 0
    for k, task in enumerate(tasks):
        y = np.asarray(train.labels[task], dtype=float)
        residual = 1 / (1 + np.exp(-logits[:, k])) - y
        if 0 < y.sum() < len(y):
            fitted += 1
            c = weight[k] * sd
            gradient = z.T @ residual + l2 * c
            assert abs(residual.sum()) < 1e-3, task
            assert np.abs(c).max() > 0.01  # the fit moved the head
            if nonnegative:
                assert c.min() >= 0 and (c == 0).any(), task  # the bound holds, and binds somewhere
                np.testing.assert_allclose(gradient[c > 1e-6], 0, atol=1e-3, err_msg=task)
                assert gradient[c == 0].min() > -1e-3, task
            else:
                assert c.min() < 0, task
                np.testing.assert_allclose(gradient, 0, atol=1e-3, err_msg=task)
        else:  # one class only: no coefficients, the smoothed log-odds
            assert np.all(weight[k] == 0) and np.allclose(logits[:, k], np.log((y.sum() + 0.5) / (len(y) - y.sum() + 0.5)))
    assert fitted >= 1
