"""The image size a compressed DICOM frame declares in its own codestream header, read before any decoder runs.

A DICOM header may say 64x64 while its JPEG 2000, JPEG or JPEG-LS codestream declares 30000x30000: the decoder
allocates what the codestream says, gigabytes from a file of a few kB. So the codestream's size is read here
(J2K SIZ; JPEG SOF0-SOF15; JPEG-LS SOF55) and must equal Rows x Columns before pydicom decodes a pixel. This
keeps decoding in the server's process, bounded by the same limits as every other input (MRNET_MAX_IN_PLANE),
instead of a worker process per file: one check of a few bytes, no start-up cost per slice.
"""
from __future__ import annotations

import struct

J2K_SOC_SIZ = b"\xff\x4f\xff\x51"
# JPEG start-of-frame markers (ITU T.81 B.1.1.3): C0-CF except DHT (C4), JPG (C8) and DAC (CC); JPEG-LS SOF55 (F7)
SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC} | {0xF7}
STANDALONE = frozenset(range(0xD0, 0xDA)) | {0x01}  # RSTn, SOI, EOI, TEM: no length field


def j2k_size(frame: bytes) -> tuple[int, int] | None:
    """(rows, columns) from a JPEG 2000 codestream's SIZ segment (ISO 15444-1 A.5.1); a JP2 file wraps the
    codestream, which starts at its SOC marker."""
    at = frame.find(J2K_SOC_SIZ)
    if at < 0 or len(frame) < at + 4 + 2 + 2 + 16:
        return None
    xsiz, ysiz, xosiz, yosiz = struct.unpack(">IIII", frame[at + 8:at + 24])
    if xosiz >= xsiz or yosiz >= ysiz:
        return None
    return ysiz - yosiz, xsiz - xosiz


def jpeg_size(frame: bytes) -> tuple[int, int] | None:
    """(rows, columns) from the first start-of-frame segment of a JPEG or JPEG-LS codestream, walking the
    marker segments from SOI. A height of 0 (to be given later by a DNL marker) counts as unknown."""
    if frame[:2] != b"\xff\xd8":
        return None
    at = 2
    while at + 4 <= len(frame):
        if frame[at] != 0xFF:
            return None
        marker = frame[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in STANDALONE:
            at += 2
            continue
        if marker == 0xDA:  # start of scan before any frame header
            return None
        (length,) = struct.unpack(">H", frame[at + 2:at + 4])
        if marker in SOF_MARKERS:
            if at + 9 > len(frame) or length < 8:
                return None
            rows, columns = struct.unpack(">HH", frame[at + 5:at + 9])
            return (rows, columns) if rows and columns else None
        at += 2 + length
    return None


def declared_size(frame: bytes) -> tuple[int, int] | None:
    """The size a JPEG, JPEG-LS or JPEG 2000 frame declares, whichever it is; None when none can be read."""
    if frame[:2] == b"\xff\xd8":
        return jpeg_size(frame)
    return j2k_size(frame[:4096])
