"""NIfTI (.nii, .nii.gz): the plane from the affine, slices in the DICOM path's orientation whatever the
affine's axis order and signs, 4-D images, and limits from the header before the data."""
import gzip
import io

import nibabel as nib
import numpy as np
import pytest

from mrnet import MRNetError
from mrnet.inputs.load import load_items
from mrnet.sets.samples import BY_KEY, sample_file

SPACING = (0.35, 0.35, 3.0)  # column, row, slice mm


def nifti_bytes(data: np.ndarray, affine: np.ndarray, gz: bool = False) -> bytes:
    image = nib.Nifti1Image(data, affine)
    image.header.set_dim_info(slice=2)
    raw = image.to_bytes()
    return gzip.compress(raw) if gz else raw


@pytest.fixture(scope="module")
def knee():
    return np.load(sample_file(BY_KEY["real-knee"]))["sagittal"]   # (slices, rows, columns) as the DICOM path gives


def sagittal_affine(col=(0, -1, 0), row=(0, 0, -1), sl=(1, 0, 0)) -> np.ndarray:
    """Voxel axes i (columns), j (rows), k (slices) -> RAS+ directions, scaled by the spacing."""
    affine = np.eye(4)
    affine[:3, 0], affine[:3, 1], affine[:3, 2] = np.multiply(col, SPACING[0]), np.multiply(row, SPACING[1]), np.multiply(sl, SPACING[2])
    return affine


def test_the_real_knee_as_nifti_reads_as_the_same_slices(knee):
    standard = knee.transpose(2, 1, 0)  # i = column (toward posterior), j = row (toward inferior), k = slice (toward right)
    for gz in (False, True):
        exam = load_items([("knee.nii.gz" if gz else "knee.nii", nifti_bytes(standard, sagittal_affine(), gz))])
        assert exam.planes == ["sagittal"]
        np.testing.assert_array_equal(exam.volumes["sagittal"], knee)
    # the same knee stored the other way round on every axis: the affine says so, and it reads the same
    flipped = standard[::-1, ::-1, ::-1]
    exam = load_items([("knee.nii", nifti_bytes(flipped, sagittal_affine((0, 1, 0), (0, 0, 1), (-1, 0, 0))))])
    np.testing.assert_array_equal(exam.volumes["sagittal"], knee)
    # and with its voxel axes in another order (slices first), slice dimension named in the header
    image = nib.Nifti1Image(np.ascontiguousarray(knee.transpose(0, 2, 1)), sagittal_affine()[:, [2, 0, 1, 3]])
    image.header.set_dim_info(slice=0)
    exam = load_items([("knee.nii", image.to_bytes())])
    np.testing.assert_array_equal(exam.volumes["sagittal"], knee)


def test_the_plane_comes_from_the_affine_and_4d_takes_the_first_volume(knee):
    coronal = sagittal_affine(col=(-1, 0, 0), row=(0, 0, -1), sl=(0, -1, 0))  # slices toward posterior: coronal
    volume = np.stack([knee.transpose(2, 1, 0), 255 - knee.transpose(2, 1, 0)], axis=-1)  # 4-D: two volumes
    exam = load_items([("sagittal_t2.nii", nifti_bytes(volume, coronal))])
    assert exam.planes == ["coronal"]
    assert any("4-D" in n and "first" in n for n in exam.notes)
    assert any("named sagittal, but its affine says coronal" in n for n in exam.notes)
    tilted = coronal.copy()
    tilted[:3, 2] = np.array([0.0, -np.cos(np.radians(20)), np.sin(np.radians(20))]) * SPACING[2]
    exam = load_items([("tilted.nii", nifti_bytes(volume[..., 0], tilted))])
    assert any("oblique by 20 degrees" in n for n in exam.notes)


def test_limits_come_from_the_header_before_the_data():
    header = nib.Nifti1Header()
    header.set_data_shape((1024, 1024, 4000))
    header.set_data_dtype(np.float64)
    header["magic"] = b"n+1"
    buf = io.BytesIO()
    header.write_to(buf)
    small = gzip.compress(buf.getvalue() + b"\0" * 4 + bytes(1000))
    with pytest.raises(MRNetError, match="at most 128"):
        load_items([("bomb.nii.gz", small)])
    header.set_data_shape((256, 256, 40))
    buf = io.BytesIO()
    header.write_to(buf)
    with pytest.raises(MRNetError, match="cut short"):
        load_items([("short.nii", buf.getvalue() + b"\0" * 4 + bytes(1000))])
    with pytest.raises(MRNetError, match="not a readable .nii.gz"):
        load_items([("broken.nii.gz", b"\x1f\x8b" + bytes(100))])


@pytest.mark.parametrize("slice_axis", [0, 1, 2])
def test_without_a_slice_dimension_the_thick_axis_is_the_slice_axis(knee, slice_axis):
    """Research pipelines reorient to the closest canonical orientation and leave slice_dim unset: the real knee
    stored with its slices along each voxel axis reads as the same sagittal slices (largest spacing wins; with
    equal spacing, the axis with the fewest samples)."""
    standard = knee.transpose(2, 1, 0)  # voxel axes: column, row, slice
    order = {0: [2, 0, 1], 1: [0, 2, 1], 2: [0, 1, 2]}[slice_axis]  # where each voxel axis goes
    data = np.ascontiguousarray(standard.transpose(order))
    affine = sagittal_affine()[:, order + [3]]
    image = nib.Nifti1Image(data, affine)
    assert image.header.get_dim_info() == (None, None, None)
    exam = load_items([("knee.nii", image.to_bytes())])
    assert exam.planes == ["sagittal"]
    np.testing.assert_array_equal(exam.volumes["sagittal"], knee)
    iso = affine.copy()
    iso[:3, :3] = iso[:3, :3] / np.linalg.norm(iso[:3, :3], axis=0) * 0.5  # isotropic: the fewest samples decide
    exam = load_items([("knee.nii", nib.Nifti1Image(data, iso).to_bytes())])
    np.testing.assert_array_equal(exam.volumes["sagittal"], knee)


@pytest.mark.long
def test_nifti_refusals_print_nothing_but_our_sentence(tmp_path):
    """nibabel's own log lines stay out of the CLI's output: only `error: ...` on stderr, exit 2."""
    from bombs import bombs
    from helpers import mrnet_cli
    for label, items, words in bombs():
        name, data = items[0]
        if not name.endswith((".nii", ".nii.gz")) or words is None:
            continue
        path = tmp_path / name
        path.write_bytes(data)
        run = mrnet_cli("predict", path)
        assert run.returncode == 2 and run.stderr.startswith("error: ") and run.stderr.count("\n") == 1, (label, run.stderr)
