import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from mrnet import MRNetError, load_weights
from mrnet.core.model import MRNet, to_input
from mrnet.core.weights import sha256_of


def test_model_shapes_and_keys():
    model = MRNet(n_tasks=3).eval()
    x = to_input(np.random.default_rng(0).integers(0, 256, (5, 256, 256), dtype=np.uint8), 58.09, 49.73)
    assert x.shape == (5, 3, 256, 256)
    maps = model.forward_features(x)
    pooled, logits = model.forward_head(maps)
    assert maps.shape == (5, 256, 7, 7)
    assert pooled.shape == (5, 256)
    assert logits.shape == (3,)
    torch.testing.assert_close(logits, model(x), rtol=1e-5, atol=1e-5)
    keys = set(model.state_dict())
    assert keys == {f"features.{i}.{k}" for i in (0, 3, 6, 8, 10) for k in ("weight", "bias")} | {
        "classifier.weight", "classifier.bias"}
    assert MRNet(n_tasks=1).classifier.out_features == 1


def test_the_features_are_torchvisions_alexnet_and_the_runtime_never_imports_torchvision():
    """The written-out convolutions hold torchvision's AlexNet layers at its indices (its state dicts load, and
    compute the same); the app's and `predict`'s imports leave torchvision out (it costs ~1.4 s per process)."""
    import subprocess
    import sys

    from torchvision.models import alexnet

    from mrnet.core.model import alexnet_features
    reference, ours = alexnet(weights=None).features.eval(), alexnet_features().eval()
    assert [repr(m) for m in ours] == [repr(m) for m in reference]
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 3, 256, 256)
    with torch.no_grad():
        assert torch.equal(ours(x), reference(x))
    # a seed draws the same initial weights as before the runtime stopped using torchvision's AlexNet
    from mrnet.toolchain.pretrained import initial_model
    torch.manual_seed(7)
    old = MRNet(3, features=alexnet(weights=None).features).init_from_scratch()
    torch.manual_seed(7)
    new = initial_model("scratch", 3)
    assert all(torch.equal(a, b) for a, b in zip(old.state_dict().values(), new.state_dict().values()))
    probe = ("import sys, mrnet.core.analysis, mrnet.inputs.load, mrnet.app.payload; "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torchvision', 'sklearn', 'scipy')))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert loaded.returncode == 0 and loaded.stdout.strip() == "[]", loaded.stdout + loaded.stderr


def test_roundtrip_and_sha256(random_weights):
    weights = load_weights(random_weights)
    assert weights.planes == ["axial", "coronal", "sagittal"]
    config = json.loads((random_weights / "config.json").read_text())
    for entry in config["models"]:
        assert entry["sha256"] == sha256_of(random_weights / entry["file"])


def copy_weights(src, dst):
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def test_strict_loading_names_missing_and_unexpected_keys(random_weights, tmp_path):
    folder = copy_weights(random_weights, tmp_path / "w")
    state = load_file(str(folder / "axial.safetensors"))
    state.pop("features.3.bias")
    state["extra.weight"] = torch.zeros(1)
    save_file(state, str(folder / "axial.safetensors"))
    with pytest.raises(MRNetError) as err:
        load_weights(folder, verify=False)
    assert "features.3.bias" in str(err.value) and "extra.weight" in str(err.value)


def test_shape_mismatch_is_named(random_weights, tmp_path):
    folder = copy_weights(random_weights, tmp_path / "w")
    state = load_file(str(folder / "coronal.safetensors"))
    state["classifier.weight"] = torch.zeros(2, 256)
    save_file(state, str(folder / "coronal.safetensors"))
    with pytest.raises(MRNetError, match="classifier.weight has shape"):
        load_weights(folder, verify=False)


def test_tampered_file_is_refused(random_weights, tmp_path):
    folder = copy_weights(random_weights, tmp_path / "w")
    data = bytearray((folder / "sagittal.safetensors").read_bytes())
    data[-10] ^= 0xFF
    (folder / "sagittal.safetensors").write_bytes(bytes(data))
    with pytest.raises(MRNetError, match="sha256"):
        load_weights(folder)


@pytest.mark.parametrize("mutate, message", [
    (lambda c: c.update(format_version=99), "format_version"),
    (lambda c: c.update(planes=["oblique"]), "unknown plane"),
    (lambda c: c["models"][0].update(file="../evil.safetensors"), "plain file name"),
    (lambda c: c.pop("tasks"), "not a valid"),
])
def test_bad_config_is_one_clear_error(random_weights, tmp_path, mutate, message):
    folder = copy_weights(random_weights, tmp_path / "w")
    config = json.loads((folder / "config.json").read_text())
    mutate(config)
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(MRNetError, match=message):
        load_weights(folder)


def test_not_a_weights_folder(tmp_path):
    with pytest.raises(MRNetError, match="no config.json"):
        load_weights(tmp_path)
