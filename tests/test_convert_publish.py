"""Converters round-trip real checkpoints the tests build themselves; pickles with foreign globals are refused."""
import json
import subprocess
import sys
import types

import numpy as np
import pytest
import torch
from torch import nn
from torchvision.models import alexnet

from mrnet import analyze, load_exam, load_weights
from mrnet.core.compute import compute_for
from mrnet.toolchain.bench import BlogMRNet
from mrnet.toolchain.card import card_text, check_card

from helpers import mrnet_cli as mrnet

pytestmark = pytest.mark.slow  # real servers, training or subprocesses: `make test-fast` skips them


def blog_checkpoint(path, seed):
    """torch.save(model) of the blog's class, which lives in a module named `model`."""
    module = types.ModuleType("model")
    cls = type("MRNet", (BlogMRNet,), {"__module__": "model"})
    module.MRNet = cls
    sys.modules["model"] = module
    try:
        torch.manual_seed(seed)
        net = cls().eval()
        for m in net.modules():  # non-trivial weights so that the logits differ between files
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
        torch.save(net, path)
    finally:
        del sys.modules["model"]
    return net


class StanfordMRNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.model = alexnet(weights=None)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(256, 1)

    def forward(self, x):
        x = torch.squeeze(x, dim=0)
        x = self.gap(self.model.features(x)).view(x.size(0), -1)
        return self.classifier(torch.max(x, 0, keepdim=True)[0])


@pytest.fixture(scope="module")
def exam_files(small_exam_files):
    return sorted(small_exam_files.glob("*.npy"))


def test_blog_checkpoints_convert_to_the_same_logits(tmp_path, exam_files):
    nets = {}
    for plane, seed in (("sagittal", 1), ("coronal", 2)):
        name = f"model_run1_acl_{plane}_val_auc_0.9012_train_auc_0.9500_epoch_7.pth"
        nets[plane] = blog_checkpoint(tmp_path / name, seed)
    out = tmp_path / "converted"
    run = mrnet("convert", *sorted(tmp_path.glob("*.pth")), "--out", out)
    assert run.returncode == 0, run.stderr
    weights = load_weights(out)
    assert weights.config.tasks == ["acl"] and weights.config.normalization.mean == 0.0
    exam = load_exam(exam_files)
    analysis = analyze(exam, weights, compute_for("cpu", "fp32"))
    for plane, net in nets.items():
        x = torch.FloatTensor(np.stack((exam.volumes[plane],) * 3, axis=1)).unsqueeze(0)  # the blog fed raw 0-255
        with torch.no_grad():
            expected = float(net(x)[0, 1])
        assert analysis.tasks["acl"].planes[plane].logit == pytest.approx(expected, rel=1e-4, abs=1e-4)


def test_stanford_state_dict_converts_to_the_same_logits(tmp_path, exam_files):
    torch.manual_seed(5)
    net = StanfordMRNet().eval()
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    torch.save(net.state_dict(), tmp_path / "meniscus_axial.pt")
    run = mrnet("convert", tmp_path / "meniscus_axial.pt", "--out", tmp_path / "w",
                "--fusion", json.dumps({"meniscus": {"intercept": 0.1, "coef": {"axial": 1.0}}}))
    assert run.returncode == 0, run.stderr
    weights = load_weights(tmp_path / "w")
    exam = load_exam(exam_files)
    analysis = analyze(exam, weights, compute_for("cpu", "fp32"))
    x = (torch.from_numpy(exam.volumes["axial"]).float() - 58.09) / 49.73
    with torch.no_grad():
        expected = float(net(torch.stack((x,) * 3, dim=1).unsqueeze(0))[0, 0])
    assert analysis.tasks["meniscus"].planes["axial"].logit == pytest.approx(expected, rel=1e-4, abs=1e-4)
    assert analysis.tasks["meniscus"].fusion == "logistic"


def test_malicious_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (subprocess.call, (["touch", str(marker)],))

    torch.save({"model": Evil()}, tmp_path / "model_x_acl_sagittal_val_auc_0.5_train_auc_0.5_epoch_1.pth")
    run = mrnet("convert", *tmp_path.glob("*.pth"), "--out", tmp_path / "out", "--format", "blog")
    assert run.returncode == 2
    assert run.stderr.startswith("error: ") and "refused" in run.stderr and "Traceback" not in run.stderr
    assert not marker.exists() and not (tmp_path / "out").exists()
    run = mrnet("convert", *tmp_path.glob("*.pth"), "--out", tmp_path / "out", "--format", "stanford")
    assert run.returncode == 2 and not marker.exists()


def test_unknown_task_or_plane_needs_flags(tmp_path):
    torch.save(StanfordMRNet().state_dict(), tmp_path / "weights.pt")
    run = mrnet("convert", tmp_path / "weights.pt", "--out", tmp_path / "w")
    assert run.returncode == 2 and "pass --task and --plane" in run.stderr
    run = mrnet("convert", tmp_path / "weights.pt", "--out", tmp_path / "w", "--task", "acl", "--plane", "sagittal")
    assert run.returncode == 0, run.stderr


def test_publish_dry_run_validates_and_lists(random_weights, tmp_path):
    run = mrnet("publish", random_weights, "--repo", "acme/knee", "--dry-run")
    assert run.returncode == 0, run.stderr
    listed = {f["file"] for f in json.loads(run.stdout)["files"]}
    assert listed == {"README.md", "config.json", "axial.safetensors", "coronal.safetensors", "sagittal.safetensors"}
    assert not (random_weights / "README.md").exists()  # a dry run writes nothing
    assert check_card(card_text(load_weights(random_weights).config)) == []
    assert check_card("no front matter") and check_card("---\nlicense: mit\n---\n")
    run = mrnet("publish", random_weights, "--repo", "not a repo", "--dry-run")
    assert run.returncode == 2
