"""DICOM series and zips, read the way radiologists' exports come."""
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from pydicom.uid import ExplicitVRBigEndian, JPEG2000Lossless

from mrnet import MRNetError
from mrnet.inputs.load import load_items

from dicom_factory import dicom_bytes, series
from helpers import npy_bytes as npy


def test_series_sorted_by_position_not_name_or_instance():
    files = series(8, axis=0)
    rng = np.random.default_rng(1)
    order = rng.permutation(8)
    items = [(f"IMG{i:04d}.dcm", files[k][2]) for i, k in enumerate(order)]  # shuffled names
    exam = load_items(items)
    v = exam.volumes["sagittal"]
    assert v.shape == (8, 256, 256)
    means = v[:, 100:, 100:].mean(axis=(1, 2))
    # slice k sits at x = 4k and is brighter than slice k-1; this orientation's normal (row x column)
    # points to -x, so ascending position along the normal is descending x
    assert np.all(np.diff(means) < 0)
    assert any("sorted by position" in n for n in exam.notes)


def test_large_slices_are_shrunk_as_they_are_decoded_and_keep_their_order():
    """Slices over 256 px are brought to display size one at a time (the series never sits in memory at full
    size); the order, the contrast and the note are as for small slices."""
    files = series(6, size=1024, axis=0)
    exam = load_items([(f"IMG{i}.dcm", data) for i, (_, _, data) in enumerate(files)])
    v = exam.volumes["sagittal"]
    assert v.shape == (6, 256, 256) and v.max() == 255
    assert np.all(np.diff(v[:, 100:, 100:].mean(axis=(1, 2))) < 0)
    assert any("resized from 1024x1024 to 256x256" in n for n in exam.notes)


@pytest.mark.parametrize("axis, plane", [(0, "sagittal"), (1, "coronal"), (2, "axial")])
def test_plane_from_orientation(axis, plane):
    exam = load_items([(f"{k}.dcm", b) for k, _, b in series(4, axis=axis)])
    assert exam.planes == [plane]


def test_oblique_is_accepted_and_reported():
    a = np.radians(12)
    orientation = (np.sin(a), np.cos(a), 0, 0, 0, -1)  # sagittal, its normal turned 12 degrees about z
    img = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64)
    items = [(f"{k}.dcm", dicom_bytes(img + k, [4.0 * k, 0, 0], orientation)) for k in range(3)]
    exam = load_items(items)
    assert exam.planes == ["sagittal"]
    assert any("oblique by 12 degrees" in n for n in exam.notes)


def test_first_echo_is_used_and_said():
    items = []
    for echo in (2, 1):
        for k, img, _ in series(4, seed=echo):
            items.append((f"e{echo}_{k}.dcm", dicom_bytes(img * echo, [4.0 * k, 0, 0], echo=echo)))
    exam = load_items(items)
    assert exam.volumes["sagittal"].shape[0] == 4
    assert any("2 echoes" in n and "echo 1" in n for n in exam.notes)


def test_rescale_and_big_endian():
    img = np.tile(np.arange(64, dtype=np.uint16), (64, 1))
    little = load_items([(f"{k}.dcm", dicom_bytes(img, [4.0 * k, 0, 0], slope=2.0, intercept=-5)) for k in range(3)])
    big = load_items([(f"{k}.dcm", dicom_bytes(img, [4.0 * k, 0, 0], syntax=ExplicitVRBigEndian)) for k in range(3)])
    np.testing.assert_array_equal(little.volumes["sagittal"], big.volumes["sagittal"])  # linear rescale, same uint8


def test_an_undecodable_compressed_stream_names_its_syntax():
    img = np.zeros((64, 64), np.uint16)
    with pytest.raises(MRNetError, match="JPEG 2000"):
        load_items([(f"{k}.dcm", dicom_bytes(img, [4.0 * k, 0, 0], syntax=JPEG2000Lossless)) for k in range(2)])


def test_non_image_dicom():
    data = dicom_bytes(np.zeros((4, 4)), [0, 0, 0], with_pixels=False)
    with pytest.raises(MRNetError, match="hold no image"):
        load_items([("report.dcm", data)])


def test_more_series_than_planes_uses_the_longest():
    small = [(f"s{k}.dcm", b) for k, _, b in series(4, series_uid="1.1", **{})]
    large = [(f"l{k}.dcm", dicom_bytes(img, [4.0 * k, 0, 0], series_uid="1.2", series_number=7))
             for k, img, _ in series(6)]
    exam = load_items(small + large)
    assert exam.volumes["sagittal"].shape[0] == 6
    assert any("skipped DICOM series" in n for n in exam.notes)


def zip_bytes(members: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_zip_of_dicom_folders_and_of_mrnet_layout():
    members = {f"patient/series1/IM{k}": b for k, _, b in series(5)}
    members |= {f"patient/series2/IM{k}": b for k, _, b in series(3, axis=2, series_uid="9.9")}
    exam = load_items([("export.zip", zip_bytes(members))])
    assert exam.planes == ["axial", "sagittal"]
    vol = np.random.default_rng(0).integers(0, 255, (3, 256, 256), dtype=np.uint8)
    layout = {"valid/axial/1130.npy": npy(vol), "valid/coronal/1130.npy": npy(vol), "notes.txt": b"hello"}
    exam = load_items([("exam.zip", zip_bytes(layout))])
    assert exam.planes == ["axial", "coronal"]
    assert any("skipped 1 file" in n for n in exam.notes)


def test_zip_limits_and_traversal_names(set_env, tmp_path):
    vol = np.random.default_rng(0).integers(0, 255, (3, 256, 256), dtype=np.uint8)
    evil = zip_bytes({"../../etc/axial.npy": npy(vol)})
    exam = load_items([("evil.zip", evil)])  # read in memory: the name is only used to tell the plane
    assert exam.planes == ["axial"]
    set_env("MRNET_MAX_UNZIPPED_MB", "1")
    bomb = zip_bytes({"sagittal.npy": npy(np.zeros((64, 256, 256), np.uint8))})
    assert len(bomb) < 200_000
    with pytest.raises(MRNetError, match="unpacks to"):
        load_items([("bomb.zip", bomb)])
    set_env("MRNET_MAX_ZIP_MEMBERS", "3")
    with pytest.raises(MRNetError, match="at most 3"):
        load_items([("many.zip", zip_bytes({f"{i}.txt": b"x" for i in range(5)}))])


def test_a_ct_series_is_refused_with_one_sentence_that_names_it():
    """pydicom's own CT test file (#38): not an MR image, so not analysed."""
    from pydicom.data import get_testdata_file
    path = Path(get_testdata_file("CT_small.dcm"))
    with pytest.raises(MRNetError) as err:
        load_items([(path.name, path.read_bytes())])
    assert str(err.value) == ("CT_small.dcm is a CT image (DICOM Modality 'CT'); this model reads knee MRI only, so "
                              "it was not analysed.")


def test_an_ultrasound_series_is_refused_before_its_pixels_are_decoded():
    """A made-up US series whose pixel data cannot be decoded: the modality sentence comes first."""
    import pydicom
    items = []
    for i in range(4):
        ds = pydicom.dcmread(io.BytesIO(dicom_bytes(np.zeros((64, 64), np.uint16), (0, 0, i), syntax=JPEG2000Lossless,
                                                    instance=i + 1)))
        ds.Modality = "US"
        buf = io.BytesIO()
        ds.save_as(buf)
        items.append((f"us{i}.dcm", buf.getvalue()))
    with pytest.raises(MRNetError, match=r"^us0.dcm is an ultrasound image \(DICOM Modality 'US'\)"):
        load_items(items)
