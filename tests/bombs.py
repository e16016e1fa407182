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


def j2k_declaring(side: int) -> bytes:
    """A 64x64 JPEG 2000 DICOM whose SIZ segment declares side x side (image and tile)."""
    from pydicom.uid import JPEG2000Lossless
    ds = recompressed(dicom_image(), JPEG2000Lossless)
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


def jpegls_declaring(side: int) -> bytes:
    from pydicom.uid import JPEGLSLossless
    return sof_declaring(recompressed(dicom_image(), JPEGLSLossless), 0xF7, side)


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
