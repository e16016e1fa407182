"""Hostile inputs are refused from their headers, before any data is decoded, each with one sentence of ours;
and the honest handling of volumes that cannot be shown (issue: real-world inputs, items 1-3)."""
import io
import re
import time
import tracemalloc
import zipfile

import numpy as np
import pytest

from mrnet import MRNetError
from mrnet.inputs.load import load_items

from helpers import npy_bytes
from hostile_corpus import corpus, dicom_series, npy_header_only, zip_of


def refused(items, message):
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(MRNetError, match=message) as err:
        load_items(items)
    seconds, (_, peak) = time.perf_counter() - start, tracemalloc.get_traced_memory()
    tracemalloc.stop()
    text = str(err.value)
    assert "\n" not in text and "Traceback" not in text and "/tmp" not in text
    return seconds, peak, text


@pytest.mark.parametrize("shape, message", [((100_000, 8000, 8000), "at most 128"), ((64, 8000, 8000), "between 16 and"),
                                            ((2, 256), "stack of slices")])
def test_a_huge_npy_header_is_refused_before_any_data(shape, message):
    _, peak, _ = refused([("axial.npy", npy_header_only(shape))], message)
    assert peak < 1 << 20  # bytes held while refusing: the header alone


def test_long_or_odd_headers_get_their_own_reason():
    _, _, text = refused([("axial.npy", npy_header_only((2, 256, 256), pad_to=20_000))], "header longer than")
    assert "pickled" not in text
    _, _, text = refused([("axial.npy", npy_header_only((2, 256, 256), descr="<U10"))], "holds <U10 data")
    assert "pickled" not in text
    refused([("axial.npy", npy_header_only((2, 256, 256), descr="no-such-type"))], "not a valid .npy file")


def test_an_overlapping_zip_bomb_is_refused_from_its_directory():
    data = bytearray(zip_of({"a.npy": b"x" * 1000, "b.npy": b"y" * 1000}))
    second = data.index(b"PK\x01\x02", data.index(b"PK\x01\x02") + 1)
    data[second + 42:second + 46] = (0).to_bytes(4, "little")  # the second entry points at the first's bytes
    seconds, _, _ = refused([("exam.zip", bytes(data))], "share their compressed bytes")
    assert seconds < 1


def test_a_member_compressed_beyond_the_ratio_cap_is_refused_before_decompressing():
    bomb = zip_of({"sagittal.npy": npy_bytes(np.zeros((64, 256, 256), np.uint8))})
    assert len(bomb) < 20_000
    _, peak, _ = refused([("bomb.zip", bomb)], "zip bomb")
    assert peak < 1 << 20
    npz = zip_of({"sagittal.npy": npy_bytes(np.zeros((64, 256, 256), np.uint8))})
    refused([("bomb.npz", npz)], "zip bomb")


def test_an_npz_member_header_is_checked_before_its_data():
    npz = zip_of({"axial.npy": npy_header_only((128, 1024, 1024), "<u2")}, compression=zipfile.ZIP_STORED)
    _, _, text = refused([("exam.npz", npz)], "cut short")
    npz = zip_of({"axial.npy": npy_header_only((128, 1024, 1024))}, compression=zipfile.ZIP_STORED)  # 1 GB of float64
    refused([("exam.npz", npz)], "a plane may hold at most 256 MB")
    npz = zip_of({"axial.npy": npy_header_only((500, 1024, 1024))}, compression=zipfile.ZIP_STORED)
    refused([("exam.npz", npz)], "at most 128")


def test_too_many_dicom_files_are_refused_as_they_come(set_env):
    set_env("MRNET_MAX_DICOM_FILES", "5")
    files = [(f"IM{i}.dcm", b"\0" * 128 + b"DICM" + b"\0" * 64) for i in range(50)]
    refused(files, "More than 5 DICOM files")


def test_reading_one_exam_has_a_wall_clock_cap(set_env):
    files = dicom_series({})
    assert load_items(files).planes  # within the default cap
    set_env("MRNET_MAX_READ_SECONDS", "0")  # every reader checks the clock between files, members and slices
    _, _, text = refused(files, "Reading the exam took longer than 0 s")
    assert "give fewer or smaller files" in text
    refused([("axial.npy", npy_bytes(np.zeros((3, 64, 64), np.uint8) + np.eye(64, dtype=np.uint8)))],
            "took longer than 0 s")


@pytest.mark.parametrize("array, message", [
    (np.array([-1e308, 1e308, 0.0] * (2 * 256 * 256 // 3 + 1))[:2 * 256 * 256].reshape(2, 256, 256), "cannot be scaled"),
    (np.full((2, 256, 256), 5e-324) * np.arange(2)[:, None, None], "cannot be scaled"),
    (np.zeros((2, 256, 256), bool), "constant"),
])
def test_volumes_that_cannot_be_shown_are_refused_with_the_reason(array, message):
    refused([("axial.npy", npy_bytes(array))], message)


def test_a_bool_volume_is_shown_black_and_white_and_said():
    mask = np.zeros((2, 256, 256), bool)
    mask[:, 100:150, 100:150] = True
    exam = load_items([("axial.npy", npy_bytes(mask))])
    assert set(np.unique(exam.volumes["axial"])) == {0, 255}
    assert any("bool" in note for note in exam.notes)


def test_corrupt_rle_is_called_damaged_not_undecodable():
    import pydicom
    from pydicom.uid import RLELossless
    files = []
    for name, data in dicom_series({}):
        ds = pydicom.dcmread(io.BytesIO(data))
        ds.compress(RLELossless)
        pixel = bytearray(ds.PixelData)
        frame = 8 + int.from_bytes(pixel[4:8], "little") + 8  # after the offset table's item and the frame's item tag
        pixel[frame:frame + 4] = (15).to_bytes(4, "little")  # its RLE header claims 15 segments; 16-bit grey has 2
        ds.PixelData = bytes(pixel)
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        files.append((name, buf.getvalue()))
    refused(files, "damaged")


CORPUS = corpus()


def test_the_corpus_is_large_enough():
    assert len(CORPUS) >= 150


@pytest.mark.parametrize("label, files, words", CORPUS, ids=[c[0] for c in CORPUS])
def test_every_hostile_input_gets_its_sentence_quickly(label, files, words):
    seconds, peak, _ = refused(files, re.escape(words))
    assert seconds < 2.0, f"{label} took {seconds:.2f} s"   # a bound, not a timing: refusals are cheap
    assert peak < 256 << 20, f"{label} held {peak >> 20} MB while being refused"
