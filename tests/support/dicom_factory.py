"""Real DICOM files written with pydicom, for the tests."""
import io

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, JPEG2000Lossless, MRImageStorage, generate_uid


def dicom_bytes(pixels: np.ndarray, position, orientation=(0, 1, 0, 0, 0, -1), series_uid="1.2.3", series_number=1,
                instance=1, echo=None, slope=None, intercept=None, syntax=ExplicitVRLittleEndian,
                description="PD SAG", with_pixels=True, tags: dict | None = None) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "MR"
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = series_number
    ds.SeriesDescription = description
    ds.InstanceNumber = instance
    ds.ImagePositionPatient = [float(v) for v in position]
    ds.ImageOrientationPatient = [float(v) for v in orientation]
    ds.PixelSpacing = [0.6, 0.6]
    for name, value in (tags or {}).items():  # e.g. PatientName, PatientID
        setattr(ds, name, value)
    if echo is not None:
        ds.EchoNumbers = echo
    if slope is not None:
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept or 0
    if with_pixels:
        ds.Rows, ds.Columns = pixels.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        if syntax == JPEG2000Lossless:
            from pydicom.encaps import encapsulate
            ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + bytes(200)])  # not a decodable codestream
        else:
            data = pixels.astype(">u2" if syntax == ExplicitVRBigEndian else "<u2").tobytes()
            ds.PixelData = data
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True, little_endian=syntax != ExplicitVRBigEndian, implicit_vr=False)
    return buf.getvalue()


def series(n=8, size=64, axis=0, seed=0, **kw):
    """n slices of a phantom-like blob; slice k carries intensity pattern k so the order can be checked."""
    rng = np.random.default_rng(seed)
    orientation = {0: (0, 1, 0, 0, 0, -1), 1: (1, 0, 0, 0, 0, -1), 2: (1, 0, 0, 0, 1, 0)}[axis]
    files = []
    for k in range(n):
        img = (rng.integers(0, 50, (size, size)) + 30 * k).astype(np.uint16)
        img[: size // 4, : size // 4] = 1000 + k  # a marker block
        pos = [0.0, 0.0, 0.0]
        pos[axis] = 4.0 * k
        files.append((k, img, dicom_bytes(img, pos, orientation, instance=n - k, **kw)))
    return files
