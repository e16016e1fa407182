import io
import pickle

import numpy as np
import pytest

from mrnet import MRNetError, load_exam
from mrnet.inputs.arrays import plane_from_name
from mrnet.inputs.load import load_items

from helpers import npy_bytes


def volume(slices=4, size=256, dtype=np.uint8, seed=0):
    return np.random.default_rng(seed).integers(0, 200, (slices, size, size)).astype(dtype)


@pytest.mark.parametrize("name, plane", [
    ("axial.npy", "axial"), ("sagittal/0003.npy", "sagittal"), ("train/coronal/0001.npy", "coronal"),
    ("exam_12_coronal.npy", "coronal"), ("0003.npy", None), ("axial_coronal.npy", None),
])
def test_plane_from_name(name, plane):
    assert plane_from_name(name) == plane


def test_per_plane_npy_files(tmp_path):
    for i, plane in enumerate(["axial", "sagittal"]):
        (tmp_path / plane).mkdir()
        np.save(tmp_path / plane / "0007.npy", volume(3 + i, seed=i))
    exam = load_exam([tmp_path / "axial" / "0007.npy", tmp_path / "sagittal" / "0007.npy"])
    assert exam.planes == ["axial", "sagittal"]
    assert exam.volumes["sagittal"].shape == (4, 256, 256)
    np.testing.assert_array_equal(exam.volumes["axial"], volume(3, seed=0))
    assert exam.describe()["missing_planes"] == ["coronal"]
    assert exam.notes == []


def test_npz_with_plane_keys(tmp_path):
    np.savez(tmp_path / "exam.npz", axial=volume(2), coronal=volume(3), meta=np.arange(3))
    exam = load_exam([tmp_path / "exam.npz"])
    assert exam.planes == ["axial", "coronal"]
    assert any("ignored arrays ['meta']" in n for n in exam.notes)


def test_other_dtype_is_rescaled_and_reported(tmp_path):
    raw = np.random.default_rng(1).normal(1000, 300, (3, 256, 256)).astype(np.float32)
    np.save(tmp_path / "coronal.npy", raw)
    exam = load_exam([tmp_path / "coronal.npy"])
    v = exam.volumes["coronal"]
    assert v.dtype == np.uint8 and v.min() == 0 and v.max() == 255
    r = raw.astype(np.float64)
    expected = np.round((r - r.min()) * 255.0 / (r.max() - r.min())).astype(np.uint8)
    np.testing.assert_array_equal(v, expected)
    assert any("rescaled" in n and "float32" in n for n in exam.notes)


def test_other_size_is_resized_and_reported(tmp_path):
    np.save(tmp_path / "axial.npy", volume(3, size=320))
    exam = load_exam([tmp_path / "axial.npy"])
    assert exam.volumes["axial"].shape == (3, 256, 256)
    assert any("resized from 320x320" in n for n in exam.notes)


BAD = {
    "pickled object array": (lambda: npy_bytes(np.array([{"a": 1}], dtype=object), allow_pickle=True), "pickled"),
    "2-D array": (lambda: npy_bytes(np.zeros((256, 256), np.uint8)), "stack of slices"),
    "zero slices": (lambda: npy_bytes(np.zeros((0, 256, 256), np.uint8)), "empty"),
    "NaN": (lambda: npy_bytes(np.full((2, 256, 256), np.nan, np.float32)), "NaN"),
    "inf": (lambda: npy_bytes(np.where(volume(2) > 100, np.inf, 1.0)), "NaN or infinite"),
    "constant": (lambda: npy_bytes(np.full((2, 256, 256), 7, np.uint8)), "constant"),
    "too many slices": (lambda: npy_bytes(np.zeros((129, 16, 16), np.uint8)), "at most 128"),
    "complex": (lambda: npy_bytes(np.zeros((2, 16, 16), np.complex64)), "numeric"),
    "truncated": (lambda: npy_bytes(volume(2))[:5000], "not a valid .npy"),
    "random bytes": (lambda: bytes(np.random.default_rng(3).integers(0, 256, 4000, dtype=np.uint8)), "not a file this tool reads"),
    "empty file": (lambda: b"", "empty"),
}


@pytest.mark.parametrize("kind", list(BAD))
def test_bad_npy_gives_one_clear_error(kind):
    make, message = BAD[kind]
    with pytest.raises(MRNetError, match=message) as err:
        load_items([("axial.npy", make())])
    text = str(err.value)
    assert "\n" not in text and "Traceback" not in text


def test_pickle_payload_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    data = npy_bytes(np.array([Evil()], dtype=object), allow_pickle=True)
    assert b"pickle" in data or data  # a real pickled payload
    with pytest.raises(MRNetError, match="pickled"):
        load_items([("sagittal.npy", data)])
    assert not marker.exists()
    payload = pickle.dumps(Evil())
    with pytest.raises(MRNetError):
        load_items([("sagittal.npy", payload)])
    assert not marker.exists()


def test_unknown_plane_and_duplicates():
    with pytest.raises(MRNetError, match="Cannot tell the plane"):
        load_items([("0001.npy", npy_bytes(volume(2)))])
    with pytest.raises(MRNetError, match="Two inputs give the axial plane"):
        load_items([("a/axial.npy", npy_bytes(volume(2))), ("b/axial.npy", npy_bytes(volume(2)))])


def test_missing_path(tmp_path):
    with pytest.raises(MRNetError, match="does not exist"):
        load_exam([tmp_path / "nope.npy"])


def test_pickled_npz_is_refused():
    buf = io.BytesIO()
    np.savez(buf, axial=np.array([{"a": 1}], dtype=object))
    with pytest.raises(MRNetError, match="pickled"):
        load_items([("exam.npz", buf.getvalue())])


def test_wrong_extension_is_read_by_content():
    exam = load_items([("sagittal.png", npy_bytes(volume(2)))])  # a .npy named .png: the content decides
    assert exam.planes == ["sagittal"]
    with pytest.raises(MRNetError, match="not a file this tool reads"):
        load_items([("axial.npy", b"\x89PNG\r\n\x1a\n" + bytes(100))])
