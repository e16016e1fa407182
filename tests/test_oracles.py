"""#39 Outside oracles: pytorch-grad-cam (`grad-cam`, a test-only dependency) computes Grad-CAM and HiResCAM
on the bundled weights' real model, and its maps equal ours where the maths says they must
(docs/cam-methods.md, "What outside code confirms"):

- one slice alone: logit = w . mean(f) + b, so the gradient is w_c / hw at every location. Grad-CAM's channel
  weights are then w_c / hw, and its map is ReLU(w . f) / hw: our classic CAM before its min-max, after a ReLU.
- a whole exam (slices as the batch): the max over slices sends channel c's gradient to the slice that wins
  it, so HiResCAM's map of slice s is ReLU(sum over the channels s wins of w_c f[s, c]) / hw: our exact
  attribution's map of s, after a ReLU. Grad-CAM's is the same (each slice's gradient is uniform in space).

pytorch-grad-cam min-max scales each map, resizes it bilinearly (cv2) to the slice and scales it again; the test
does the same to ours and compares to float precision."""
import cv2
import numpy as np
import pytest
import torch
from pytorch_grad_cam import GradCAM, HiResCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from mrnet.core.explain import classic_cam, exact_attribution
from mrnet.core.hub import resolve
from mrnet.core.model import to_input
from mrnet.phantom import generate_exam

TASKS = ["abnormal", "acl", "meniscus"]


class OneExam(torch.nn.Module):
    """The MRNet model as grad-cam expects a classifier: a batch of outputs, here the one exam's logits."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x).unsqueeze(0)


def min_max(m: np.ndarray) -> np.ndarray:
    m = m - m.min()
    return m / (1e-7 + m.max())


def as_grad_cam_shows(maps: np.ndarray, size: int) -> np.ndarray:
    """ReLU, per-map min-max, bilinear resize to the slice, min-max again: pytorch-grad-cam's `scale_cam_image`
    for the layer, then for the layers' mean (one layer here: the resize's samples may miss the maximum)."""
    return np.float32([min_max(cv2.resize(np.float32(min_max(m)), (size, size))) for m in np.maximum(maps, 0)])


@pytest.fixture(scope="module")
def plane_model():
    torch.manual_seed(0)
    weights = resolve("").weights
    entry, model = weights.for_plane("sagittal")[0]
    model = model.float().eval()
    norm = weights.config.normalization
    volume = generate_exam(900_002).volumes["sagittal"][:10]  # a phantom with a lesion (seed from test_phantom_train)
    return model, to_input(volume, norm.mean, norm.std).contiguous().clone()


@pytest.mark.parametrize("task", TASKS)
def test_grad_cam_on_one_slice_is_our_classic_cam_before_its_scaling(plane_model, task):
    model, x = plane_model
    k = TASKS.index(task)
    for index in (2, 7):
        one = x[index:index + 1]
        with GradCAM(model=OneExam(model), target_layers=[model.features[-1]]) as cam:
            theirs = cam(input_tensor=one, targets=[ClassifierOutputTarget(k)])
        with torch.no_grad():
            features = model.forward_features(one).float()
            raw = torch.einsum("c,schw->shw", model.classifier.weight[k], features).numpy()
        np.testing.assert_allclose(theirs, as_grad_cam_shows(raw, one.shape[-1]), atol=1e-4)
        # the bundled head's weights are positive (--stage1-positive-head) and the features are ReLU outputs, so the
        # map is never negative and the ReLU changes nothing: Grad-CAM is our classic CAM itself
        assert raw.min() >= 0
        ours = classic_cam(features, model.classifier.weight[k]).detach().numpy()
        np.testing.assert_allclose(theirs, as_grad_cam_shows(ours, one.shape[-1]), atol=1e-4)


@pytest.mark.parametrize("oracle", [HiResCAM, GradCAM])
def test_hirescam_and_grad_cam_over_an_exam_are_our_exact_attribution(plane_model, oracle):
    """Over the exam (its slices as grad-cam's batch, through the max over slices), each slice's map is our exact
    attribution of that slice after a ReLU; the slices that win no channel get no map at all."""
    model, x = plane_model
    for k in range(len(TASKS)):
        with oracle(model=OneExam(model), target_layers=[model.features[-1]]) as cam:
            theirs = cam(input_tensor=x, targets=[ClassifierOutputTarget(k)])
        with torch.no_grad():
            features = model.forward_features(x).float()
            pooled, _ = model.forward_head(features)
            maps, contributions = exact_attribution(features, pooled, model.classifier.weight[k])
        np.testing.assert_allclose(theirs, as_grad_cam_shows(maps.numpy(), x.shape[-1]), atol=1e-4)
        owners = set(pooled.argmax(dim=0).tolist())
        for s in range(len(x)):
            assert (s in owners) or np.abs(theirs[s]).max() == 0
        assert len(owners) > 1  # a real test: several slices hold channels
