"""DICOM series -> exam planes.

Rules (documented in the README):
- Files are grouped into series by SeriesInstanceUID. Within a series, multi-echo / multi-contrast
  acquisitions are split by EchoNumbers (else EchoTime); the first echo is used, and that is said.
- The plane comes from ImageOrientationPatient: the slice normal's nearest patient axis
  (x: sagittal, y: coronal, z: axial); oblique series are accepted and their angle is reported.
- Slices are sorted by position along the slice normal (ImagePositionPatient . normal), never by
  file name or InstanceNumber.
- Rescale slope/intercept are applied; intensities go to uint8 between the 0.5th and 99.5th
  percentiles of the volume; slices are resized to 256x256.
- More series than planes: per plane, the series with the most slices is used (ties: the lower
  SeriesNumber); the others are listed as skipped.
"""
from __future__ import annotations

import io
import math
import struct
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np

from mrnet.core.errors import MRNetError
from mrnet.core.exam import SIZE, Exam
from mrnet.core.settings import settings
from mrnet.inputs.arrays import resize_slice, to_uint8_volume
from mrnet.inputs.codestream import declared_size
from mrnet.inputs.deadline import check

AXES = {"sagittal": np.array([1.0, 0, 0]), "coronal": np.array([0, 1.0, 0]), "axial": np.array([0, 0, 1.0])}


DEFLATED = b"1.2.840.10008.1.2.1.99"  # Deflated Explicit VR Little Endian


def read_dataset(name: str, data: bytes):
    """The dataset, its pixel data not yet decoded; pydicom's warnings stay out of our messages and output.
    A deflated dataset is refused before pydicom parses it: pydicom inflates the whole stream, with no bound,
    as it reads (1 MB became 1 GB), and no scanner we know of writes MR images that way."""
    import pydicom
    from pydicom.errors import InvalidDicomError
    if DEFLATED in data[:16384]:  # the file meta group, which names the transfer syntax, comes first
        raise MRNetError(f"{Path(name).name} uses the Deflated transfer syntax, which is not accepted; send it "
                         "uncompressed (explicit VR little endian) or JPEG/JPEG 2000 compressed.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pydicom.dcmread(io.BytesIO(data), force=not data[128:132] == b"DICM")
    except (InvalidDicomError, EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError,
            OSError, NotImplementedError, struct.error, RecursionError) as exc:
        raise MRNetError(f"{Path(name).name} is not a readable DICOM file ({type(exc).__name__}).") from None


MODALITIES = {"CT": "a CT", "CR": "a radiograph (CR)", "DX": "a radiograph (DX)", "US": "an ultrasound",
              "PT": "a PET", "NM": "a nuclear medicine", "MG": "a mammography", "XA": "an angiography",
              "RF": "a fluoroscopy", "OT": "an unspecified (OT)", "SC": "a secondary capture"}


def check_modality(ds, name: str) -> None:
    """Only MR images are read: the model was made for knee MRI, and a CT or a radiograph would get confident
    numbers that mean nothing. Checked from the header, before any pixel is decoded. A file that names no
    modality is read (the out-of-distribution warning is the guard there, as for NIfTI)."""
    modality = str(getattr(ds, "Modality", "") or "").strip().upper()
    if modality and modality != "MR":
        kind = MODALITIES.get(modality, f"a {modality[:16]!r}")
        raise MRNetError(f"{Path(name).name} is {kind} image (DICOM Modality {modality[:16]!r}); this model reads knee "
                         "MRI only, so it was not analysed.")


def check_image_header(ds, name: str) -> None:
    """Rows, Columns, NumberOfFrames and BitsAllocated checked before any pixel is decoded."""
    base = Path(name).name
    try:
        rows, columns = int(ds.Rows), int(ds.Columns)
        frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
        bits = int(getattr(ds, "BitsAllocated", 16))
    except (AttributeError, TypeError, ValueError):
        raise MRNetError(f"{base} has no usable Rows, Columns or BitsAllocated: its pixels cannot be read.") from None
    side = settings().max_in_plane
    if not (16 <= rows <= side and 16 <= columns <= side):
        raise MRNetError(f"{base} has images of {rows}x{columns} pixels; between 16 and {side} pixels a side are accepted.")
    if frames != 1:
        raise MRNetError(f"{base} holds {frames} frames; multi-frame DICOM is not supported (one slice per file).")
    if bits not in (1, 8, 16, 32):
        raise MRNetError(f"{base} has {bits} bits per pixel; 8, 16 or 32 are read.")


def plane_of(ds, name: str) -> tuple[str, float, np.ndarray]:
    try:
        iop = [float(v) for v in ds.ImageOrientationPatient]
    except (AttributeError, TypeError, ValueError):
        raise MRNetError(f"{Path(name).name} has no usable ImageOrientationPatient: the plane cannot be told.") from None
    if len(iop) != 6:
        raise MRNetError(f"{Path(name).name} has an ImageOrientationPatient of {len(iop)} values instead of 6: "
                         "the plane cannot be told.")
    normal = np.cross(np.array(iop[:3]), np.array(iop[3:]))
    norm = np.linalg.norm(normal)
    if not np.isfinite(norm) or norm < 1e-6:
        raise MRNetError(f"{Path(name).name} has an invalid ImageOrientationPatient.")
    normal /= norm
    plane = max(AXES, key=lambda p: abs(normal @ AXES[p]))
    angle = math.degrees(math.acos(min(1.0, abs(float(normal @ AXES[plane])))))
    return plane, angle, normal


def check_codestream(ds, base: str) -> None:
    """A compressed frame's own header must declare the Rows x Columns the DICOM header says (mrnet.inputs.codestream):
    the decoder allocates what the codestream declares, whatever the DICOM header claims."""
    from pydicom.encaps import get_frame
    from pydicom.uid import RLELossless
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    try:
        # RLE is pydicom's own decoder, which writes Rows x Columns whatever the stream holds
        if syntax is None or not syntax.is_encapsulated or syntax == RLELossless:
            return
    except ValueError:
        return  # an unknown syntax: pydicom has no decoder for it, and says so (undecodable)
    try:
        frame = get_frame(ds.PixelData, 0, number_of_frames=1)
    except Exception:  # pydicom raises several types for damaged encapsulation
        raise MRNetError(f"{base}: its compressed pixel data is damaged (no readable frame).") from None
    size = declared_size(frame)
    if size is None and "JPEG" not in syntax.name:
        return  # no decoder here reads it (JPEG XL, MPEG, ...): `undecodable` says so
    if size is None:
        raise MRNetError(f"{base}: its pixel data, compressed with {syntax.name}, has no readable image header; "
                         "the file is damaged.")
    if size != (int(ds.Rows), int(ds.Columns)):
        raise MRNetError(f"{base}: its {syntax.name} image declares {size[0]}x{size[1]} pixels but the DICOM header "
                         f"says {int(ds.Rows)}x{int(ds.Columns)}; the file is damaged or crafted, and refused.")


def pixels(ds, name: str) -> np.ndarray:
    base = Path(name).name
    check_codestream(ds, base)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            array = ds.pixel_array
    except Exception:  # pydicom raises several types for missing decoders and bad data
        raise MRNetError(undecodable(ds, base)) from None
    if array.ndim != 2:
        raise MRNetError(f"{base} holds {array.shape} pixels; multi-frame and colour DICOM are not supported.")
    slope, intercept = rescale_number(ds, "RescaleSlope", 1.0, base), rescale_number(ds, "RescaleIntercept", 0.0, base)
    if slope == 0:
        raise MRNetError(f"{base} has a RescaleSlope of 0, which would make every pixel {intercept:g}; the file is damaged.")
    return array.astype(np.float64) * slope + intercept


def rescale_number(ds, keyword: str, default: float, base: str) -> float:
    raw = None
    try:
        raw = getattr(ds, keyword, None)
        if raw is None or raw == "":
            return default
        value = float(raw)
    except (TypeError, ValueError):
        shown = f" ({str(raw)[:20]!r})" if raw is not None else ""
        raise MRNetError(f"{base} has a {keyword} that is not a number{shown}.") from None
    if not math.isfinite(value):
        raise MRNetError(f"{base} has a {keyword} that is not a finite number.")
    return value


def undecodable(ds, base: str) -> str:
    """Why the pixel data could not be decoded, in our words: no decoder for its syntax, or damaged data."""
    from pydicom.pixels import get_decoder
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if syntax is None:
        return f"{base}: the pixel data cannot be read (the file names no transfer syntax)."
    try:
        compressed, label = syntax.is_compressed, f"{syntax.name} ({syntax})"
    except ValueError:
        return f"{base} names {str(syntax)[:64]!r} as its transfer syntax, which is not a DICOM transfer syntax."
    if not compressed:
        return f"{base}: the pixel data cannot be read; it does not match its Rows, Columns and bits per pixel."
    try:
        decodable = get_decoder(syntax).is_available
    except (NotImplementedError, ValueError):
        decodable = False
    if decodable:
        return f"{base}: its pixel data, compressed with {label}, is damaged and cannot be decoded."
    return f"{base} is compressed with {label}, which this server cannot decode; send it uncompressed (explicit VR little endian)."


def to_uint8_percentiles(volume: np.ndarray) -> np.ndarray:
    if not np.isfinite(volume).all():
        raise MRNetError("The DICOM series contains NaN or infinite values.")
    lo, hi = np.percentile(volume, [0.5, 99.5])
    if hi <= lo:
        lo, hi = float(volume.min()), float(volume.max())
    if hi <= lo:
        raise MRNetError("The DICOM series is constant: there is no image in it.")
    return np.round(np.clip((volume - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8)


def add_dicom_files(exam: Exam, items: list[tuple[str, bytes]]) -> None:
    series: dict[str, list] = defaultdict(list)
    non_image = []
    for name, data in items:
        check(name)
        ds = read_dataset(name, data)
        if "PixelData" not in ds:
            non_image.append(Path(name).name)
            continue
        check_modality(ds, name)
        check_image_header(ds, name)
        series[str(getattr(ds, "SeriesInstanceUID", "unknown"))].append((name, ds))
    if not series:
        raise MRNetError("The DICOM files hold no image (" + ", ".join(non_image[:3]) + ").")
    if non_image:
        exam.notes.append(f"Skipped {len(non_image)} DICOM file(s) without pixel data.")
    by_plane = defaultdict(list)
    for members in series.values():
        cand = first_echo_volume(members, exam.notes)
        by_plane[cand["plane"]].append(cand)
    for plane, cands in by_plane.items():
        cands.sort(key=lambda c: (-len(c["slices"]), c["number"]))
        chosen = cands[0]
        volume = np.stack([s for _, s in chosen["slices"]])
        name = f"{plane} series {chosen['label']}"
        uint8, notes = to_uint8_volume(to_uint8_percentiles(volume), name)
        if max(chosen["shape"]) > SIZE:  # shrunk as decoded (first_echo_volume)
            h, w = chosen["shape"]
            notes.append(f"{name}: resized from {h}x{w} to {SIZE}x{SIZE} pixels.")
        oblique = f", oblique by {chosen['angle']:.0f} degrees" if chosen["angle"] >= 1 else ""
        exam.add(plane, uint8, f"DICOM series {chosen['label']}", notes)
        exam.notes.append(f"{plane}: DICOM series {chosen['label']}, {len(chosen['slices'])} slices sorted by "
                          f"position{oblique}.")
        for other in cands[1:]:
            exam.notes.append(f"{plane}: skipped DICOM series {other['label']} ({len(other['slices'])} slices): "
                              "a series with more slices was used.")


def first_echo_volume(members: list, notes: list) -> dict:
    """One series -> one candidate volume (its first echo), with plane, angle and sorted slices."""
    groups = defaultdict(list)
    for name, ds in members:
        echo = getattr(ds, "EchoNumbers", None) or getattr(ds, "EchoTime", None) or 0
        try:
            echo = float(echo if not isinstance(echo, (list, tuple)) else echo[0])
        except (TypeError, ValueError):
            echo = 0.0
        groups[echo].append((name, ds))
    first = min(groups)
    chosen = groups[first]
    ds0 = chosen[0][1]
    description = str(getattr(ds0, "SeriesDescription", "") or "").strip()
    label = f"{getattr(ds0, 'SeriesNumber', '?')}" + (f" ({description})" if description else "")
    if len(groups) > 1:
        notes.append(f"DICOM series {label}: {len(groups)} echoes/contrasts; the first (echo {first:g}) is used.")
    plane, angle, normal = plane_of(ds0, chosen[0][0])
    slices, shape = [], None
    for name, ds in chosen:
        check(name)  # decoding pixels is the slow part
        p, a, n = plane_of(ds, name)
        if p != plane or float(n @ normal) < 0.99:
            raise MRNetError(f"DICOM series {label} mixes slice orientations; send one orientation per series.")
        try:
            position = float(np.array([float(v) for v in ds.ImagePositionPatient]) @ normal)
        except (AttributeError, TypeError, ValueError):
            raise MRNetError(f"{Path(name).name} has no ImagePositionPatient: slices cannot be ordered.") from None
        image = pixels(ds, name)
        if shape is not None and image.shape != shape:
            raise MRNetError(f"DICOM series {label} has slices of different sizes ({shape} and {image.shape}).")
        shape = image.shape
        # keep each slice at display size as it is decoded, and let go of the file's pixel bytes: a series of
        # 128 slices of 1024 x 1024 then holds 32 MB of slices instead of 1 GB of float64 (and their copies)
        slices.append((position, resize_slice(image.astype(np.float32), SIZE) if max(shape) > SIZE else image))
        del ds.PixelData
    positions = [p for p, _ in slices]
    if not all(math.isfinite(p) for p in positions):
        raise MRNetError(f"DICOM series {label} has slice positions that are not numbers; slices cannot be ordered.")
    if len(set(positions)) < len(positions):
        raise MRNetError(f"DICOM series {label} has {len(positions)} slices but only {len(set(positions))} distinct "
                         "positions (ImagePositionPatient): slices cannot be ordered; send one series of distinct slices.")
    slices.sort(key=lambda s: s[0])
    try:
        number = int(getattr(ds0, "SeriesNumber", 0) or 0)
    except (TypeError, ValueError):
        number = 0
    return {"plane": plane, "angle": angle, "slices": slices, "label": label, "number": number, "shape": shape}
