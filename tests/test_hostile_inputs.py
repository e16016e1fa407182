"""Hostile inputs are refused from their headers, before any data is decoded, each with one sentence of ours;
and the honest handling of volumes that cannot be shown (issue: real-world inputs, items 1-3)."""
import io
import re
import time
import tracemalloc
import zipfile

import numpy as np
import pytest
from hostile_corpus import corpus

from mrnet import MRNetError
from mrnet.inputs import load_items

from helpers import npy_bytes


def npy_header_only(shape, descr="<f8", pad_to=None) -> bytes:
    """A .npy header announcing `shape` with no data behind it (what a hostile upload costs to send)."""
    header = "{'descr': '%s', 'fortran_order': False, 'shape': %r, }" % (descr, tuple(shape))
    if pad_to:
        header += " " * (pad_to - len(header))
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode()


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


def zip_of(files: dict, compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        for name, blob in files.items():
            zf.writestr(name, blob)
    return buf.getvalue()


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
    npz = zip_of({"axial.npy": npy_header_only((128, 1024, 1024))}, compression=zipfile.ZIP_STORED)
    _, _, text = refused([("exam.npz", npz)], "cut short")
    npz = zip_of({"axial.npy": npy_header_only((500, 1024, 1024))}, compression=zipfile.ZIP_STORED)
    refused([("exam.npz", npz)], "at most 128")


def test_too_many_dicom_files_are_refused_as_they_come(set_env):
    set_env("MRNET_MAX_DICOM_FILES", "5")
    files = [(f"IM{i}.dcm", b"\0" * 128 + b"DICM" + b"\0" * 64) for i in range(50)]
    refused(files, "More than 5 DICOM files")


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


def dicom_slices(n=3, **kw):
    from dicom_factory import dicom_bytes
    img = (np.arange(64 * 64).reshape(64, 64) % 97).astype(np.uint16)
    return [(f"IM{k}.dcm", dicom_bytes(img + k, kw.pop("position", None) or [4.0 * k, 0, 0], **kw)) for k in range(n)]


def edited(files, **tags):
    """The same DICOM files with some tags rewritten as a damaged export would have them."""
    import pydicom
    out = []
    for name, data in files:
        ds = pydicom.dcmread(io.BytesIO(data))
        for key, value in tags.items():
            if key == "TransferSyntaxUID":
                ds.file_meta.TransferSyntaxUID = value
            else:
                setattr(ds, key, value)
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        out.append((name, buf.getvalue()))
    return out


@pytest.mark.parametrize("tags, message", [
    ({"RescaleSlope": "abc"}, "RescaleSlope that is not a number"),  # bytes rewritten below
    ({"RescaleSlope": "0"}, "RescaleSlope of 0"),
    ({"ImageOrientationPatient": [0, 1, 0, 0]}, "4 values instead of 6"),
    ({"ImagePositionPatient": [1.0, 0.0, 0.0]}, "only 1 distinct positions"),
    ({"ImagePositionPatient": ["NaN", "0", "0"]}, "not numbers"),
    ({"TransferSyntaxUID": "1.2.3.4.5.6"}, "not a DICOM transfer syntax"),
    ({"Rows": 8192, "Columns": 8192}, "8192x8192 pixels"),
    ({"NumberOfFrames": 40}, "40 frames"),
])
def test_damaged_dicom_gets_one_sentence_of_ours(tags, message):
    files = dicom_slices()
    if tags.get("RescaleSlope") == "abc":  # pydicom will not write a text DS: put a number, then its bytes
        files = [(name, data.replace(b"7.123456", b"abcdefgh")) for name, data in edited(files, RescaleSlope="7.123456")]
        tags = {}
    _, _, text = refused(edited(files, **tags) if tags else files, message)
    for library_words in ("could not convert", "UID is not a transfer syntax", "dimension must be", "Error"):
        assert library_words not in text


def test_corrupt_rle_is_called_damaged_not_undecodable():
    import pydicom
    from pydicom.uid import RLELossless
    files = []
    for name, data in dicom_slices():
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
