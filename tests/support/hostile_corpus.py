"""A corpus of hostile inputs, made here (large ones generated, never stored): (label, files, expected words).
Every item must be refused with one sentence of ours containing the expected words. Used by
test_hostile_inputs.py (each item, with a time bound) and load_bench.py (bad clients beside good ones)."""
import gzip
import io
import zipfile

import numpy as np

from helpers import npy_bytes


def npy_header_only(shape, descr="<f8", pad_to=None, version=(1, 0)) -> bytes:
    """A .npy header announcing `shape` with no data behind it (what a hostile upload costs to send)."""
    header = "{'descr': '%s', 'fortran_order': False, 'shape': %r, }" % (descr, tuple(shape))
    if pad_to:
        header += " " * (pad_to - len(header))
    size = 4 if version == (2, 0) else 2
    header += " " * (63 - (8 + size + len(header)) % 64) + "\n"
    return b"\x93NUMPY" + bytes(version) + len(header).to_bytes(size, "little") + header.encode()


def zip_of(files: dict, compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        for name, blob in files.items():
            zf.writestr(name, blob)
    return buf.getvalue()


def overlapping_zip(n: int) -> bytes:
    """n central-directory entries all pointing at the first member's bytes."""
    data = bytearray(zip_of({f"m{i}.npy": bytes([i]) * 1000 for i in range(n)}))
    at = data.index(b"PK\x01\x02")
    for _ in range(n - 1):
        at = data.index(b"PK\x01\x02", at + 1)
        data[at + 42:at + 46] = (0).to_bytes(4, "little")
    return bytes(data)


def nifti_header(shape, dtype=np.float64) -> bytes:
    import nibabel as nib
    header = nib.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(dtype)
    buf = io.BytesIO()
    header.write_to(buf)
    return buf.getvalue() + b"\0" * 4


def dicom_edits():
    """(label, {tag: value}, expected words) for a 3-slice series rewritten as a damaged export has it."""
    return [("slope zero", {"RescaleSlope": "0"}, "RescaleSlope of 0"),
            ("orientation of 4", {"ImageOrientationPatient": [0, 1, 0, 0]}, "4 values instead of 6"),
            ("orientation of 5", {"ImageOrientationPatient": [0, 1, 0, 0, 0]}, "5 values instead of 6"),
            ("orientation zero", {"ImageOrientationPatient": [0, 0, 0, 0, 0, 0]}, "invalid ImageOrientationPatient"),
            ("one position", {"ImagePositionPatient": [1.0, 0.0, 0.0]}, "distinct positions"),
            ("NaN position", {"ImagePositionPatient": ["NaN", "0", "0"]}, "not numbers"),
            ("unknown syntax", {"TransferSyntaxUID": "1.2.3.4.5.6"}, "not a DICOM transfer syntax"),
            ("8192 square", {"Rows": 8192, "Columns": 8192}, "8192x8192 pixels"),
            ("a CT series", {"Modality": "CT"}, "is a CT image"),
            ("an ultrasound series", {"Modality": "US"}, "is an ultrasound image"),
            ("4096 rows", {"Rows": 4096}, "between 16 and"),
            ("8 rows", {"Rows": 8, "Columns": 8}, "between 16 and"),
            ("40 frames", {"NumberOfFrames": 40}, "40 frames"),
            ("12 bits allocated", {"BitsAllocated": 12}, "12 bits per pixel"),
            ("no rows", {"Rows": None}, "Rows, Columns or BitsAllocated")]


def dicom_series(tags: dict):
    import pydicom

    from dicom_factory import dicom_bytes
    img = (np.arange(64 * 64).reshape(64, 64) % 97).astype(np.uint16)
    out = []
    for k in range(3):
        ds = pydicom.dcmread(io.BytesIO(dicom_bytes(img + k, [4.0 * k, 0, 0])))
        for key, value in tags.items():
            if key == "TransferSyntaxUID":
                ds.file_meta.TransferSyntaxUID = value
            elif value is None:
                del ds[key]
            else:
                setattr(ds, key, value)
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        out.append((f"IM{k}.dcm", buf.getvalue()))
    return out


def corpus():
    items = []
    add = lambda label, files, words: items.append((label, files, words))  # noqa: E731
    # .npy headers that announce too much, too little or the wrong thing (no data behind them)
    for s in (129, 500, 10_000, 2**31):
        add(f"npy {s} slices", [("axial.npy", npy_header_only((s, 256, 256)))], "at most 128")
    for side in (1025, 4096, 8000, 65536):
        add(f"npy {side}px", [("axial.npy", npy_header_only((8, side, side)))], "between 16 and")
        add(f"npy {side}px wide", [("axial.npy", npy_header_only((8, 256, side)))], "between 16 and")
    for side in (1, 8, 15):
        add(f"npy {side}px small", [("axial.npy", npy_header_only((8, side, side)))], "between 16 and")
    for shape in ((256, 256), (2, 3, 256, 256), (), (5,), (0, 256, 256), (3, 0, 256)):
        words = "empty" if 0 in shape else "stack of slices"
        add(f"npy shape {shape}", [("axial.npy", npy_header_only(shape))], words)
    for descr in ("<U10", "|S8", "<c8", "<c16", "<M8[s]", "<m8[s]", "|V16", "<f16"):
        add(f"npy dtype {descr}", [("axial.npy", npy_header_only((2, 256, 256), descr=descr))], f"holds {np.dtype(descr)} data")
    for descr in ("no-such-type", "<q9", "{}", "[('a', '<i4'), ('b', 'x')]"):
        add(f"npy descr {descr}", [("axial.npy", npy_header_only((2, 256, 256), descr=descr))], "not a valid .npy")
    for pad in (12_000, 20_000, 60_000):
        add(f"npy header {pad} B", [("axial.npy", npy_header_only((2, 256, 256), pad_to=pad, version=(2, 0)))],
            "header longer than")
    add("npy version 9", [("axial.npy", npy_header_only((2, 256, 256))[:6] + b"\x09\x00" + b"\x10\x00" + b" " * 16)],
        "format version 9.0, which is not read")
    good = npy_bytes(np.zeros((2, 256, 256), np.uint8) + np.arange(256, dtype=np.uint8))
    for cut in (10, 60, 128, 1000, 50_000, len(good) - 1):
        add(f"npy cut at {cut}", [("axial.npy", good[:cut])], "not a valid .npy")
    for plane in ("coronal", "sagittal"):
        for s_ in (129, 4096):
            add(f"npy {s_} slices as {plane}", [(f"{plane}.npy", npy_header_only((s_, 256, 256)))], "at most 128")
        for side in (2048, 8):
            add(f"npy {side}px as {plane}", [(f"{plane}.npy", npy_header_only((4, side, side)))], "between 16 and")
        add(f"npy text as {plane}", [(f"{plane}.npy", npy_header_only((4, 64, 64), descr="<U4"))], "holds <U4 data")
    # volumes that cannot be shown
    big = np.array([-1e308, 1e308] * (2 * 256 * 128)).reshape(2, 256, 256)
    add("float64 +-1e308", [("axial.npy", npy_bytes(big))], "cannot be scaled")
    add("float64 denormals", [("axial.npy", npy_bytes(np.full((2, 256, 256), 5e-324) * np.arange(2)[:, None, None]))],
        "cannot be scaled")
    for dtype in (np.uint8, np.int16, np.uint16, np.int32, np.float32, np.float64, bool):
        add(f"constant {np.dtype(dtype).name}", [("axial.npy", npy_bytes(np.ones((2, 64, 64), dtype)))], "constant")
    for value in (np.nan, np.inf, -np.inf):
        for dtype in (np.float16, np.float32, np.float64):
            v = np.zeros((2, 64, 64), dtype)
            v[1, 3, 3] = value
            add(f"{value} in {np.dtype(dtype).name}", [("axial.npy", npy_bytes(v))], "NaN or infinite")
    add("pickled objects", [("axial.npy", npy_bytes(np.array([{"a": 1}], dtype=object), allow_pickle=True))], "pickled")
    # zips: from the central directory, before decompressing
    for n in (2, 10, 100):
        add(f"overlapping zip x{n}", [("exam.zip", overlapping_zip(n))], "share their compressed bytes")
        add(f"overlapping npz x{n}", [("exam.npz", overlapping_zip(n))], "share their compressed bytes")
    for mb in (2, 16, 64):
        blob = zip_of({"sagittal.npy": npy_bytes(np.zeros((mb, 1024, 1024), np.uint8))})
        add(f"zip bomb {mb} MB", [("bomb.zip", blob)], "zip bomb")
        add(f"npz bomb {mb} MB", [("bomb.npz", blob)], "zip bomb")
    for n in (2001, 3000):
        add(f"zip of {n} files", [("many.zip", zip_of({f"{i}.txt": b"" for i in range(n)}, zipfile.ZIP_STORED))], f"{n} files")
    add("zip of text", [("notes.zip", zip_of({"a.txt": b"hello", "b.csv": b"1,2"}))], "holds no .npy plane")
    add("empty zip", [("empty.zip", zip_of({}))], "not a file this tool reads")  # no member: no local header magic
    for cut in (30, 100, 200):
        add(f"zip cut at {cut}", [("cut.zip", zip_of({"axial.npy": good})[:cut])], "not a readable zip")
    for label, patch in (("smaller size", lambda d, at: d[:at + 24] + (10).to_bytes(4, "little") + d[at + 28:]),
                         ("bad CRC", lambda d, at: d[:at + 16] + b"\xde\xad\xbe\xef" + d[at + 20:])):
        blob = zip_of({"axial.npy": good})
        at = blob.index(b"PK\x01\x02")
        if label == "bad CRC":
            local = blob.index(b"PK\x03\x04")
            blob = patch(patch(blob, at), local - 2)  # the CRC sits at 14 in a local header, 16 in a central one
        else:
            blob = patch(blob, at)
        add(f"zip {label}", [("exam.zip", blob)], "cannot be read")
    add("npz without planes", [("exam.npz", zip_of({"image.npy": good}))], "no array named")
    add("npz huge member header", [("exam.npz", zip_of({"axial.npy": npy_header_only((500, 1024, 1024))}, zipfile.ZIP_STORED))],
        "at most 128")
    add("npz member cut", [("exam.npz", zip_of({"axial.npy": npy_header_only((64, 256, 256))}, zipfile.ZIP_STORED))], "cut short")
    # headers inside archives are checked just the same
    for label, blob, words in (("129 slices", npy_header_only((129, 256, 256)), "at most 128"),
                               ("4096px", npy_header_only((8, 4096, 4096)), "between 16 and"),
                               ("text", npy_header_only((2, 64, 64), descr="<U10"), "holds <U10 data"),
                               ("cut", good[:5000], "cut short")):
        add(f"zip holding npy {label}", [("exam.zip", zip_of({"sagittal.npy": blob}, zipfile.ZIP_STORED))], words)
    for descr in ("<c8", "<U3"):
        add(f"npz member {descr}", [("exam.npz", zip_of({"coronal.npy": npy_header_only((2, 64, 64), descr=descr)}))],
            f"holds {np.dtype(descr)} data")
    add("zip of 1001 DICOM files", [("series.zip", zip_of({f"IM{i}.dcm": b"\0" * 128 + b"DICM" for i in range(1001)},
                                                          zipfile.ZIP_STORED))], "More than 1000 DICOM files")
    for magic, name, words in ((b"\x93NUMPY\x01\x00", "axial.npy", "not a valid .npy"), (b"PK\x03\x04", "exam.zip", "not a readable zip"),
                               (b"PK\x03\x04", "exam.npz", "not a readable zip")):
        add(f"magic {magic[:4]!r} then noise", [(name, magic + bytes(rng_bytes(500)))], words)
    # NIfTI
    add("nifti 2-D", [("flat.nii", nifti_header((64, 64)))], "2 dimensions")
    add("nifti 4096px", [("wide.nii", nifti_header((4096, 4096, 10)))], "between 16 and")
    add("nifti.gz cut", [("cut.nii.gz", gzip.compress(nifti_header((256, 256, 40)) + bytes(100)))], "cut short")
    for shape in ((1024, 1024, 4000), (256, 256, 500), (2048, 2048, 10)):
        raw = nifti_header(shape)
        words = "at most 128" if shape[2] > 128 else "between 16 and"
        add(f"nifti {shape}", [("bomb.nii", raw)], words)
        add(f"nifti.gz {shape}", [("bomb.nii.gz", gzip.compress(raw))], words)
    add("nifti cut", [("cut.nii", nifti_header((256, 256, 40)) + bytes(100))], "cut short")
    add("nifti 5-D", [("five.nii", nifti_header((64, 64, 8, 2, 2)))], "5 dimensions")
    add("nifti.gz damaged", [("bad.nii.gz", b"\x1f\x8b" + bytes(300))], "not a readable .nii.gz")
    add("nifti complex", [("c.nii", nifti_header((64, 64, 8), np.complex64))], "complex64 data")
    # DICOM
    for label, tags, words in dicom_edits():
        add(f"dicom {label}", dicom_series(tags), words)
    for text in (b"abcdefgh", b"1e999   ", b"--1.0   "):  # a rescale slope that is no finite number
        files = [(n, d.replace(b"7.123456", text)) for n, d in dicom_series({"RescaleSlope": "7.123456", "RescaleIntercept": "0"})]
        add(f"dicom slope {text.strip().decode()}", files, "RescaleSlope that is not")
    add("dicom garbage", [("IM0.dcm", b"\0" * 128 + b"DICM" + bytes(300))], "hold no image")
    add("dicom without pixels", [("IM0.dcm", dicom_no_pixels())], "hold no image")
    add("too many dicom files", [(f"IM{i}.dcm", b"\0" * 128 + b"DICM") for i in range(1001)], "More than 1000 DICOM files")
    # names and contents that are none of the formats
    rng = np.random.default_rng(7)
    for i, size in enumerate((1, 17, 300, 4096, 100_000)):
        add(f"random {size} B", [("sagittal.npy.bin", bytes(rng.integers(0, 256, size, dtype=np.uint8)))], "not a file this tool reads")
    for name in ("knee.png", "knee.jpg", "exam.tar.gz", "report.pdf", "sagittal.nii"):
        add(f"wrong content {name}", [(name, b"%PDF-1.4 " + bytes(600))], "not a file this tool reads")
    add("empty file", [("axial.npy", b"")], "empty")
    add("no files", [], "No input files")
    add("plane twice", [("a/axial.npy", good), ("b/axial.npy", good)], "Two inputs give the axial plane")
    add("no plane in name", [("0001.npy", good)], "Cannot tell the plane")
    return items


def rng_bytes(n: int) -> bytes:
    return bytes(np.random.default_rng(n).integers(0, 256, n, dtype=np.uint8))


def dicom_no_pixels():
    from dicom_factory import dicom_bytes
    return dicom_bytes(np.zeros((4, 4)), [0, 0, 0], with_pixels=False)
