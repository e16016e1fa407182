import json

import numpy as np

from mrnet.cli import main

from helpers import mrnet_cli as mrnet


def test_predict_prints_the_json_report(random_weights, small_exam_files, tmp_path):
    out = tmp_path / "out"
    files = sorted(small_exam_files.glob("*.npy"))
    run = mrnet("predict", *files, "--weights", random_weights, "--out", out, "--method", "classic")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["weights"]["source"] == {"kind": "local", "folder": str(random_weights)}
    assert report["method"] == "classic"
    assert report["device"] == "cpu" and report["precision"] in ("bf16", "fp32")  # what ran, said in the report
    for task in ("abnormal", "acl", "meniscus"):
        t = report["tasks"][task]
        assert 0 <= t["probability"] <= 1
        for plane in ("axial", "coronal", "sagittal"):
            p = t["planes"][plane]
            assert set(p) >= {"probability", "logit", "bias", "slice_contributions", "top_slice"}
            assert len(p["slice_contributions"]) == 12
            pngs = sorted((out / task / plane).glob("*.png"))
            assert [f.name for f in pngs] == [f"{i:03d}.png" for i in range(12)]
    saved = json.loads((out / "report.json").read_text())
    assert saved["tasks"] == report["tasks"]
    assert saved["method"] == report["method"] == "classic"


def test_predict_png_is_the_overlay(random_weights, small_exam_files, tmp_path):
    import cv2

    from mrnet import analyze, compute_for, load_exam, load_weights
    from mrnet.core.config import DEFAULT_METHOD
    from mrnet.core.render import Renderer
    out = tmp_path / "out"
    run = mrnet("predict", small_exam_files / "axial.npy", "--weights", random_weights, "--out", out,
                "--precision", "fp32", "--opacity", "0.6")
    assert run.returncode == 0, run.stderr
    analysis = analyze(load_exam([small_exam_files / "axial.npy"]), load_weights(random_weights), compute_for("cpu", "fp32"))
    png = cv2.imread(str(out / "acl" / "axial" / "005.png"))[:, :, ::-1]
    np.testing.assert_array_equal(png, Renderer(analysis).overlay("acl", "axial", 5, DEFAULT_METHOD, 0.6))  # the default
    viridis = tmp_path / "viridis"
    run = mrnet("predict", small_exam_files / "axial.npy", "--weights", random_weights, "--out", viridis,
                "--precision", "fp32", "--opacity", "0.6", "--palette", "viridis")
    assert run.returncode == 0, run.stderr
    png = cv2.imread(str(viridis / "acl" / "axial" / "005.png"))[:, :, ::-1]
    expected = Renderer(analysis).overlay("acl", "axial", 5, DEFAULT_METHOD, 0.6, "viridis")
    np.testing.assert_array_equal(png, expected)
    assert (expected != Renderer(analysis).overlay("acl", "axial", 5, DEFAULT_METHOD, 0.6)).any()
    wrong = mrnet("predict", small_exam_files / "axial.npy", "--weights", random_weights, "--palette", "rainbow")
    assert wrong.returncode == 2 and "invalid choice: 'rainbow'" in wrong.stderr


def test_bad_input_exits_2_with_one_line(tmp_path, random_weights):
    bad = tmp_path / "axial.npy"
    bad.write_bytes(b"\x93NUMPY garbage")
    for args in (["predict", bad, "--weights", random_weights], ["predict", tmp_path / "none.npy"],
                 ["predict", bad, "--weights", tmp_path / "nowhere" / "x"]):
        run = mrnet(*args)
        assert run.returncode == 2, run.stderr
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), run.stderr
        assert "Traceback" not in run.stderr and run.stdout == ""


def test_the_deletion_figure_needs_a_recorded_evaluation(random_weights, tmp_path):
    run = mrnet("figure", "--kind", "deletion", "--weights", random_weights, "--out", tmp_path / "d.png")
    assert run.returncode == 2 and run.stderr.strip().startswith("error: These weights carry no deletion curves")
    assert len(run.stderr.strip().splitlines()) == 1 and not (tmp_path / "d.png").exists()


def test_evaluate_compare_is_checked_before_the_run(tmp_path, random_weights, capsys):
    (tmp_path / "not-a-report.json").write_text('{"hello": 1}')
    for args, sentence in ((["--compare", "x=y.json"], "error: --compare goes with --record"),
                           (["--record", "--compare", "nameonly"], "error: --compare takes NAME=REPORT.json"),
                           (["--record", "--compare", f"a={tmp_path / 'missing.json'}"], "is not a readable JSON report"),
                           (["--record", "--compare", f"a={tmp_path / 'not-a-report.json'}"],
                            "is not the output of `python -m mrnet evaluate`")):
        # in this process: the same main() as `python -m mrnet`, without paying torch's import four times
        code = main([str(x) for x in ("evaluate", "--data", tmp_path / "nowhere", "--weights", random_weights, *args)])
        err = capsys.readouterr().err
        assert code == 2 and sentence in err and len(err.strip().splitlines()) == 1, err
