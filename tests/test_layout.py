"""The plan of the code, checked: the runtime apart from the toolchain, a light CLI, one registry of CAM
methods, one settings object, and scikit-learn where the toolchain used hand-written statistics."""
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch

from mrnet import cli
from mrnet.core.compute import compute_for
from mrnet.core.errors import MRNetError
from mrnet.core.explain import METHODS, CamMethod

from server import ROOT

LAYERS = ("mrnet.cli", "mrnet.__main__", "mrnet.toolchain", "mrnet.app", "mrnet.sets", "mrnet.phantom", "mrnet.inputs",
          "mrnet.core")


def test_every_module_sits_in_a_layer_of_the_contract():
    contract = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"][0]
    named = {m.strip() for layer in contract["layers"] for m in layer.replace(":", "|").split("|")}
    assert named == set(LAYERS)
    for path in (ROOT / "mrnet").rglob("*.py"):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        assert module == "mrnet" or module.startswith(tuple(m + "." for m in LAYERS)) or module in LAYERS, module


def test_app_py_is_a_launcher_over_the_app_layer():
    import ast
    tree = ast.parse((ROOT / "app.py").read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert {m for m in imported if m.startswith("mrnet")} == {"mrnet.app.ui"}


@pytest.mark.slow
def test_an_upward_import_fails_the_layers_contract(tmp_path):
    """The contract is checked, not just written: core importing the app breaks `lint-imports`."""
    import shutil
    shutil.copytree(ROOT / "mrnet", tmp_path / "mrnet", ignore=shutil.ignore_patterns("__pycache__", "sample_data"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    lint = [str(Path(sys.executable).parent / "lint-imports")]
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
    assert subprocess.run(lint, cwd=tmp_path, env=env, capture_output=True).returncode == 0
    errors = tmp_path / "mrnet" / "core" / "errors.py"
    errors.write_text(errors.read_text() + "\nimport mrnet.app.present  # noqa\n")
    run = subprocess.run(lint, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert run.returncode != 0 and "mrnet.core.errors -> mrnet.app.present" in run.stdout


def test_the_cli_and_the_package_load_no_torch_until_a_command_runs():
    code = ("import sys, mrnet, mrnet.cli; mrnet.cli.build_parser(); "
            "print(sorted(m for m in ('torch', 'sklearn', 'cv2', 'gradio', 'mrnet.toolchain.train') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_cli_takes_methods_from_the_registry_and_evaluate_defaults(small_exam_files, random_weights):
    from mrnet.core.config import DEFAULT_METHOD, DILATE_PX

    from helpers import mrnet_cli
    assert cli.DILATE_PX is DILATE_PX and cli.DEFAULT_METHOD is DEFAULT_METHOD  # one home: core/config.py
    run = mrnet_cli("predict", small_exam_files / "axial.npy", "--weights", random_weights, "--method", "gradcam")
    assert run.returncode == 2 and run.stderr.strip().startswith(
        "error: Unknown CAM method 'gradcam'; use shapley, exact or classic.")


def test_a_registered_cam_method_reaches_the_analysis_and_the_renderer(random_weights, small_exam_files):
    """Adding a method is one entry in the registry: the analysis computes it and the renderer draws it."""
    from mrnet import analyze, load_exam, load_weights
    from mrnet.core.render import Renderer
    METHODS["negative"] = CamMethod("negative", "Negative evidence", lambda f, p, w: (-torch.einsum("c,schw->shw", w, f)).clamp_min(0),
                                    lambda maps, every: maps / max(float(m.max()) for m in every))
    try:
        analysis = analyze(load_exam([small_exam_files / "axial.npy"]), load_weights(random_weights), compute_for("cpu", "fp32"))
        plane = analysis.tasks["acl"].planes["axial"]
        assert set(plane.maps) == {"shapley", "exact", "classic", "negative"} and plane.maps["negative"].min() >= 0
        cams = Renderer(analysis).cam_volume("acl", "axial", "negative")
        assert cams.shape == (12, 256, 256) and cams.max() >= 240  # scaled to its peak (bilinear blurs it a little)
    finally:
        del METHODS["negative"]


def test_settings_are_read_once_with_one_name_per_limit(set_env):
    from mrnet.core.settings import Settings, settings
    from mrnet.inputs.load import max_upload_bytes
    set_env("MRNET_MAX_UPLOAD_MB", "3")
    assert settings().max_upload_mb == 3 and max_upload_bytes() == 3 * 2**20
    assert Settings.from_env({"MRNET_SHARE": "1", "MRNET_CONCURRENCY": "4"}) == Settings(share=True, concurrency=4)
    for bad in ({"MRNET_MAX_SLICES": "many"}, {"MRNET_CONCURRENCY": "0"}, {"MRNET_SHARE": "maybe"}):
        with pytest.raises(MRNetError, match=next(iter(bad))):
            Settings.from_env(bad)


def test_a_setting_that_does_not_parse_stops_the_app_with_one_sentence():
    import os
    env = dict(os.environ, MRNET_MAX_SLICES="many", GRADIO_SERVER_PORT="1")
    run = subprocess.run([sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and run.stderr == "error: MRNET_MAX_SLICES='many' is not a whole number.\n", run.stderr


def test_compute_choices():
    assert compute_for("cpu", "fp32").precision == "fp32"
    with pytest.raises(MRNetError, match="Unknown device"):
        compute_for("tpu:7")
    with pytest.raises(MRNetError, match="fp16 runs on CUDA only"):
        compute_for("cpu", "fp16")
    if not torch.cuda.is_available():
        with pytest.raises(MRNetError, match="no CUDA GPU"):
            compute_for("cuda")
        assert compute_for("auto").device.type == "cpu"


def newton_logistic(x, y, l2, steps=50):
    """The hand-written fit the toolchain used before scikit-learn (kept here as the reference)."""
    X = np.hstack([np.ones((len(x), 1)), x])
    w = np.zeros(X.shape[1])
    penalty = np.diag([0.0] + [l2] * (X.shape[1] - 1))
    for _ in range(steps):
        p = 1 / (1 + np.exp(-np.clip(X @ w, -30, 30)))
        step = np.linalg.solve(X.T @ (X * (p * (1 - p))[:, None]) + penalty + 1e-9 * np.eye(len(w)), X.T @ (p - y) + penalty @ w)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w[0], w[1:]


def rank_sum_auc(labels, scores):
    pos, neg = scores[labels == 1], scores[labels == 0]
    return ((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (len(pos) * len(neg))


def test_scikit_learn_fusion_and_auc_agree_with_the_hand_written_ones():
    from mrnet.sets.metrics import auc
    from mrnet.toolchain.dataset import fit_logistic
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 80)
    x = np.stack([y * 2.0 + rng.normal(0, 1.5, 80) for _ in range(3)], axis=1)   # three plane logits
    for l2 in (1.0, 1e-2):
        intercept, coef = fit_logistic(x, y, l2=l2)
        ref_intercept, ref_coef = newton_logistic(x, y, l2)
        np.testing.assert_allclose(coef, ref_coef, rtol=1e-5, atol=1e-6)
        assert abs(intercept - ref_intercept) < 1e-5
    scores = np.round(x[:, 0], 1)  # ties counted half in both
    assert abs(auc(y, scores) - rank_sum_auc(y, scores)) < 1e-12
    assert auc(np.zeros(5), np.arange(5)) is None


def test_an_abbreviated_option_is_refused_not_silently_dropped():
    """`train --epoch 3 --recipe stanford` trained 50 epochs: the recipe merge did not see the abbreviation."""
    with pytest.raises(SystemExit) as exited:
        cli.build_parser().parse_args(["train", "--data", "d", "--out", "o", "--epoch", "3", "--recipe", "stanford"])
    assert exited.value.code == 2
    args = cli.build_parser().parse_args(["train", "--data", "d", "--out", "o", "--epochs", "3", "--recipe", "stanford"])
    assert args.epochs == 3


def test_the_readme_is_a_front_door_whose_links_all_exist():
    import re
    readme = (ROOT / "README.md").read_text()
    assert len(readme.encode()) <= 12 * 1024
    links = re.findall(r"\]\(([^)#]+)\)", readme)
    assert {"docs/viewer.md", "docs/cases.md", "docs/cam-methods.md", "docs/evaluation.md", "docs/training.md",
            "docs/deploy.md", "docs/settings.md", "docs/inputs.md", "docs/speed.md"} <= set(links)
    for page in [ROOT / link for link in links] + sorted((ROOT / "docs").glob("*.md")):
        assert page.exists(), page
        for target in re.findall(r"\]\(([^)#:]+)\)", page.read_text()) if page.suffix == ".md" else []:
            assert (page.parent / target).exists(), f"{page.name} links to {target}"
    # and every #anchor names a heading of the page it points into (GitHub's slugs)
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target, anchor in re.findall(r"\]\(([^)#:\s]*)#([^)\s]+)\)", page.read_text()):
            into = (page.parent / target) if target else page
            assert anchor in heading_slugs(into), f"{page.name} links to {target or page.name}#{anchor}"


def heading_slugs(page: Path) -> set[str]:
    """The anchors GitHub makes of a Markdown page's headings: lower case, punctuation dropped, spaces as '-'."""
    import re
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    slugs = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*$", text, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        base, n = slug, 1
        while slug in slugs:
            slug, n = f"{base}-{n}", n + 1
        slugs.add(slug)
    return slugs


def test_requirements_dev_and_the_dev_extra_list_the_same_packages():
    import re

    from packaging.requirements import Requirement
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    from_extra = {str(Requirement(r)) for r in extras["dev"] + extras["train"] if not r.startswith("mrnet-cam")}
    lines = [re.sub(r"#.*", "", line).strip() for line in (ROOT / "requirements-dev.txt").read_text().splitlines()]
    from_file = {str(Requirement(line)) for line in lines if line and not line.startswith("-r")}
    assert from_file == from_extra
    runtime = [re.sub(r"#.*", "", line).strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    assert {str(Requirement(line)) for line in runtime if line} == {str(Requirement(r)) for r in project["dependencies"]}


def test_importing_the_app_does_no_work_until_its_context_is_built(tmp_path):
    """`import mrnet.app.ui` resolves no weights, opens no set, starts no thread: with MRNET_WEIGHTS naming a
    folder that does not exist, the import succeeds and only create_context() fails, with one sentence."""
    check = (
        "import threading, json\n"
        "before = threading.active_count()\n"
        "import mrnet.app.ui\n"
        "after = threading.active_count()\n"
        "from mrnet.app.context import create_context\n"
        "from mrnet.core.errors import MRNetError\n"
        "try:\n"
        "    create_context()\n"
        "    said = ''\n"
        "except MRNetError as exc:\n"
        "    said = str(exc)\n"
        "print(json.dumps({'threads': after - before, 'said': said}))\n")
    missing = tmp_path / "no-such-weights"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MRNET_")}
    run = subprocess.run([sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={**env, "MRNET_WEIGHTS": str(missing), "HF_HUB_OFFLINE": "1"})
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["threads"] == 0 and result["said"], result


def test_the_readmes_metrics_table_is_what_the_bundled_card_says():
    """#36: the README's table is generated from weights/config.json (`python -m mrnet readme-metrics`); this
    fails when either changes without the other."""
    from mrnet.toolchain.card import with_readme_metrics
    readme = (ROOT / "README.md").read_text()
    evaluation = json.loads((ROOT / "weights" / "config.json").read_text())["provenance"]["evaluation"]
    assert with_readme_metrics(readme, evaluation) == readme
    aucs = evaluation["auc"]["abnormal"]
    assert f"| Abnormality | {aucs['fused']:.3f} | {aucs['axial']:.3f} | {aucs['coronal']:.3f} |" in readme
