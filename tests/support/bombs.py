"""Decoder bombs (issue 24): tiny files whose codestream or header declares far more than they hold, built
here from real encoders and then patched. Each entry: (label, [(file name, bytes)], words of the refusal, or
None when the input is read, bounded)."""
import gzip
import io
import struct

import numpy as np


def dicom_image(rows=64, columns=64, **kw) -> bytes:
    from dicom_factory import dicom_bytes
    img = (np.arange(rows * columns).reshape(rows, columns) % 251).astype(np.uint16)
    return dicom_bytes(img, [0.0, 0.0, 0.0], **kw)


def recompressed(data: bytes, syntax, **kwargs):
    import pydicom
    ds = pydicom.dcmread(io.BytesIO(data))
    ds.compress(syntax, **kwargs)
    return ds


def saved(ds) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def with_frame(ds, frame: bytes) -> bytes:
    from pydicom.encaps import encapsulate
    ds.PixelData = encapsulate([frame])
    return saved(ds)


def frame_of(ds) -> bytes:
    from pydicom.encaps import get_frame
    return get_frame(ds.PixelData, 0, number_of_frames=1)


def j2k_declaring(side: int, lossy: bool = False) -> bytes:
    """A 64x64 JPEG 2000 DICOM whose SIZ segment declares side x side (image and tile)."""
    from pydicom.uid import JPEG2000, JPEG2000Lossless
    ds = recompressed(dicom_image(), JPEG2000, j2k_psnr=[60]) if lossy else recompressed(dicom_image(), JPEG2000Lossless)
    frame = bytearray(frame_of(ds))
    at = frame.find(b"\xff\x4f\xff\x51")
    frame[at + 8:at + 16] = struct.pack(">II", side, side)      # Xsiz, Ysiz
    frame[at + 24:at + 32] = struct.pack(">II", side, side)     # XTsiz, YTsiz
    return with_frame(ds, bytes(frame))


def sof_declaring(ds, marker: int, side: int) -> bytes:
    frame = bytearray(frame_of(ds))
    at = frame.find(bytes([0xFF, marker]))
    frame[at + 5:at + 9] = struct.pack(">HH", side, side)
    return with_frame(ds, bytes(frame))


def jpegls_declaring(side: int, near: bool = False) -> bytes:
    from pydicom.uid import JPEGLSLossless, JPEGLSNearLossless
    ds = recompressed(dicom_image(), JPEGLSNearLossless, jls_error=2) if near else recompressed(dicom_image(), JPEGLSLossless)
    return sof_declaring(ds, 0xF7, side)


def jpeg_baseline_declaring(side: int) -> bytes:
    import pydicom
    from PIL import Image
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit
    ds = pydicom.dcmread(io.BytesIO(dicom_image()))
    eight = (ds.pixel_array % 256).astype(np.uint8)
    jpeg = io.BytesIO()
    Image.fromarray(eight).save(jpeg, format="JPEG", quality=90)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelData = encapsulate([jpeg.getvalue()])
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.PhotometricInterpretation = "MONOCHROME2"
    return sof_declaring(ds, 0xC0, side)


def deflated(rows=512) -> bytes:
    """A Deflated Explicit VR Little Endian DICOM of zero pixels: a few kB that inflate many times over."""
    import pydicom
    from pydicom.uid import DeflatedExplicitVRLittleEndian
    ds = pydicom.dcmread(io.BytesIO(dicom_image()))
    ds.Rows = ds.Columns = rows
    ds.PixelData = bytes(rows * rows * 2)
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    return saved(ds)


def nifti(volume: np.ndarray, edit=None, declared_shape=None, gz=False) -> bytes:
    """A real NIfTI-1 of `volume`; `declared_shape` rewrites the header's dimensions (the data stays as it is),
    `edit(header)` changes other fields."""
    import nibabel as nib
    image = nib.Nifti1Image(volume, np.diag([0.35, 0.35, 3.0, 1.0]))
    image.header.set_dim_info(slice=2)
    raw = image.to_bytes()
    header = image.header.copy()
    header.set_data_offset(352)  # what to_bytes wrote
    if declared_shape:
        header.set_data_shape(declared_shape)
    if edit:
        edit(header)
    out = header.binaryblock + raw[348:]
    return gzip.compress(out, 1) if gz else out


def nifti_zero_gz(shape=(1024, 1024, 128), dtype=np.float64, megabytes=64) -> bytes:
    """A .nii.gz declaring `shape` whose stream holds `megabytes` of zeros (the rest is left out: the header is
    what must be refused)."""
    import nibabel as nib
    header = nib.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(dtype)
    buf = io.BytesIO()
    header.write_to(buf)
    return gzip.compress(buf.getvalue() + bytes(4) + bytes(megabytes << 20), 6)


def set_field(name, value):
    def edit(header):
        header[name] = value
    return edit


def edits(*fns):
    def edit(header):
        for fn in fns:
            fn(header)
    return edit


def bombs():
    vol = (np.arange(64 * 64 * 16).reshape(64, 64, 16) % 997).astype(np.int16)
    nan = float("nan")
    return [
        ("j2k 20000", [("j2k.dcm", j2k_declaring(20000))], "declares 20000x20000 pixels"),
        ("j2k 60000", [("j2k.dcm", j2k_declaring(60000))], "declares 60000x60000 pixels"),
        ("jpeg-ls 30000", [("jls.dcm", jpegls_declaring(30000))], "declares 30000x30000 pixels"),
        ("jpeg baseline 65535", [("jpg.dcm", jpeg_baseline_declaring(65535))], "declares 65535x65535 pixels"),
        ("deflated", [("deflated.dcm", deflated())], "Deflated transfer syntax"),
        ("nifti 4-D of 1500", [("t2.nii", nifti(vol, declared_shape=(64, 64, 16, 1500)))], None),
        ("nifti.gz 4-D of 1500", [("t2.nii.gz", nifti(vol, declared_shape=(64, 64, 16, 1500), gz=True))], None),
        ("nifti.gz far vox_offset", [("far.nii.gz", nifti(vol, set_field("vox_offset", 3.5e9), gz=True))],
         "voxels start at byte"),
        ("nifti NaN vox_offset", [("nan.nii", nifti(vol, set_field("vox_offset", nan)))], "voxels start at byte"),
        ("nifti.gz 1 GB of zeros", [("zeros.nii.gz", nifti_zero_gz())], "a plane may hold at most"),
        ("nifti NaN pixdim", [("p.nii", nifti(vol, edits(set_field("sform_code", 0), set_field("qform_code", 0),
                                                          set_field("pixdim", [1, nan, 1, 1, 1, 1, 1, 1]))))],
         "not a set of finite numbers"),
        ("nifti inf pixdim", [("p.nii", nifti(vol, edits(set_field("sform_code", 0), set_field("qform_code", 0),
                                                          set_field("pixdim", [1, 1, float("inf"), 1, 1, 1, 1, 1]))))],
         "not a set of finite numbers"),
        ("nifti NaN sform", [("s.nii", nifti(vol, edits(set_field("sform_code", 1), set_field("srow_x", [nan, 0, 0, 0]))))],
         "not a set of finite numbers"),
        ("nifti zero sform", [("s.nii", nifti(vol, edits(set_field("sform_code", 1), set_field("srow_x", [0, 0, 0, 0]),
                                                          set_field("srow_y", [0, 0, 0, 0]), set_field("srow_z", [0, 0, 0, 0]))))],
         "degenerate voxel geometry"),
        ("nifti rank-1 sform", [("s.nii", nifti(vol, edits(set_field("sform_code", 1), set_field("srow_x", [1, 1, 1, 0]),
                                                            set_field("srow_y", [1, 1, 1, 0]), set_field("srow_z", [1, 1, 1, 0]))))],
         "degenerate voxel geometry"),
        ("nifti NaN quaternion", [("q.nii", nifti(vol, edits(set_field("sform_code", 0), set_field("qform_code", 1),
                                                              set_field("quatern_b", nan))))],
         "not a set of finite numbers"),
    ]


def variants():
    """The bombs above across the sizes, fields and wrappings an attacker would try (each is refused from its
    header, or read within bounds)."""
    vol = (np.arange(64 * 64 * 16).reshape(64, 64, 16) % 997).astype(np.int16)
    nan, inf = float("nan"), float("inf")
    out = []
    add = lambda label, name, data, words: out.append((label, [(name, data)], words))  # noqa: E731
    for side in (32, 65, 128, 1025, 4096, 8191, 20000, 30000, 60000, 65535):
        words = f"declares {side}x{side} pixels"
        add(f"j2k declaring {side}", "j2k.dcm", j2k_declaring(side), words)
        add(f"jpeg-ls declaring {side}", "jls.dcm", jpegls_declaring(side), words)
        add(f"jpeg baseline declaring {side}", "jpg.dcm", jpeg_baseline_declaring(side), words)
        add(f"j2k lossy declaring {side}", "j2k.dcm", j2k_declaring(side, lossy=True), words)
        add(f"jpeg-ls near-lossless declaring {side}", "jls.dcm", jpegls_declaring(side, near=True), words)
    for rows in (64, 256, 1024):
        add(f"deflated {rows}", "deflated.dcm", deflated(rows), "Deflated transfer syntax")
    for gz in (False, True):
        suffix = ".nii.gz" if gz else ".nii"
        for volumes in (2, 10, 100, 1500, 32767):
            add(f"nifti 4-D header of {volumes}{' gz' if gz else ''}", "t2" + suffix,
                nifti(vol, declared_shape=(64, 64, 16, volumes), gz=gz), None)
        for offset in (nan, inf, -inf, -1.0, 0.0, 100.0, 2e6, 1e9, 3.5e9, 2.0 ** 63):
            add(f"nifti vox_offset {offset}{' gz' if gz else ''}", "o" + suffix,
                nifti(vol, set_field("vox_offset", offset), gz=gz), "voxels start at byte")
        for dims, words in (([0, 64, 64, 16, 1, 1, 1, 1], "declares 0 dimensions"),
                            ([8, 64, 64, 16, 1, 1, 1, 1], "dimensions in its header"),
                            ([3, 64, -64, 16, 1, 1, 1, 1], "declares a dimension of"),
                            ([3, 64, 0, 16, 1, 1, 1, 1], "declares a dimension of"),
                            ([5, 64, 64, 16, 2, 2, 1, 1], "5 dimensions"),
                            ([3, 1024, 1024, 200, 1, 1, 1, 1], "at most 128")):
            add(f"nifti dim {dims[:5]}{' gz' if gz else ''}", "d" + suffix, nifti(vol, set_field("dim", dims), gz=gz), words)
        for axis in (1, 2, 3):
            for bad in (nan, inf, -inf):
                pixdim = [1.0] * 8
                pixdim[axis] = bad
                add(f"nifti pixdim[{axis}]={bad}{' gz' if gz else ''}", "p" + suffix,
                    nifti(vol, edits(set_field("sform_code", 0), set_field("qform_code", 0), set_field("pixdim", pixdim)),
                          gz=gz), "not a set of finite numbers")
        for name, rows, words in (
                ("zero", ([0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]), "degenerate voxel geometry"),
                ("rank 1", ([1, 1, 1, 0], [2, 2, 2, 0], [3, 3, 3, 0]), "degenerate voxel geometry"),
                ("rank 2", ([1, 0, 0, 0], [0, 1, 0, 0], [1, 1, 0, 0]), "degenerate voxel geometry"),
                ("tiny", ([1e-30, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]), "degenerate voxel geometry"),
                ("nan", ([nan, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]), "not a set of finite numbers"),
                ("inf", ([1, 0, 0, inf], [0, 1, 0, 0], [0, 0, 1, 0]), "not a set of finite numbers")):
            add(f"nifti sform {name}{' gz' if gz else ''}", "s" + suffix,
                nifti(vol, edits(set_field("sform_code", 1), set_field("srow_x", rows[0]), set_field("srow_y", rows[1]),
                                 set_field("srow_z", rows[2])), gz=gz), words)
        for field in ("quatern_b", "quatern_c", "quatern_d", "qoffset_x"):
            add(f"nifti {field} NaN{' gz' if gz else ''}", "q" + suffix,
                nifti(vol, edits(set_field("sform_code", 0), set_field("qform_code", 1), set_field(field, nan)), gz=gz),
                "not a set of finite numbers")
    return out
