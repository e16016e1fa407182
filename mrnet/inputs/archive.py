"""Zips (and .npz, which are zips) checked from their central directory before anything is decompressed:
member count, declared total size, a compression-ratio cap per member, and no two members sharing bytes
(an "overlapping" zip bomb points many entries at one compressed block). Reading a member never takes
more than it declared."""
from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

from mrnet.core.errors import MRNetError
from mrnet.core.settings import settings

MAX_RATIO = 200          # uncompressed / compressed, per member over RATIO_FROM bytes (deflate reaches ~1000)
RATIO_FROM = 1 << 20
LOCAL_HEADER = struct.Struct("<4s5H3L2H")   # a member's local file header (30 bytes)
READ_ERRORS = (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, RuntimeError, struct.error)


def open_zip(data: bytes, name: str) -> tuple[zipfile.ZipFile, list[zipfile.ZipInfo]]:
    """The archive and its file members, or one sentence saying why it is refused."""
    base = Path(name).name
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = [m for m in archive.infolist() if not m.is_dir()]
    except READ_ERRORS as exc:
        raise MRNetError(f"{base} is not a readable zip file ({type(exc).__name__}).") from None
    limit = settings().max_zip_members
    if len(members) > limit:
        raise MRNetError(f"{base} has {len(members)} files; at most {limit} are accepted.")
    total, cap = sum(m.file_size for m in members), settings().max_unzipped_mb
    if total > cap * 2**20:
        raise MRNetError(f"{base} unpacks to {total / 2**20:.0f} MB; at most {cap} MB are accepted.")
    for m in members:
        if m.file_size > RATIO_FROM and m.file_size > MAX_RATIO * max(m.compress_size, 1):
            raise MRNetError(f"{base}: {Path(m.filename).name} would unpack {m.file_size // max(m.compress_size, 1)} "
                             f"times larger than it is stored (at most {MAX_RATIO}x is accepted); refused as a zip bomb.")
    check_no_overlap(data, members, base)
    return archive, members


def check_no_overlap(data: bytes, members: list[zipfile.ZipInfo], base: str) -> None:
    """Each member's bytes (local header, name, extra field, compressed data) must lie apart from every other's."""
    spans = []
    for m in members:
        offset = m.header_offset
        try:
            signature, *_, name_len, extra_len = LOCAL_HEADER.unpack_from(data, offset)
        except struct.error:
            raise MRNetError(f"{base} is not a readable zip file (a member lies outside it).") from None
        if signature != b"PK\x03\x04":
            raise MRNetError(f"{base} is not a readable zip file (a member's header is damaged).")
        spans.append((offset, offset + LOCAL_HEADER.size + name_len + extra_len + m.compress_size))
    spans.sort()
    for (_, end), (start, _) in zip(spans, spans[1:]):
        if start < end:
            raise MRNetError(f"{base} has members that share their compressed bytes (an overlapping zip bomb); refused.")


def member_stream(archive: zipfile.ZipFile, member: zipfile.ZipInfo, base: str):
    try:
        return archive.open(member)
    except READ_ERRORS as exc:
        raise MRNetError(f"{base}: member {Path(member.filename).name} cannot be read ({type(exc).__name__}).") from None


def read_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo, base: str) -> bytes:
    """All of one member, never more than it declared (+1 byte, to catch a member that lies about its size)."""
    try:
        with member_stream(archive, member, base) as fh:
            blob = fh.read(member.file_size + 1)
    except READ_ERRORS as exc:
        raise MRNetError(f"{base}: member {Path(member.filename).name} cannot be read ({type(exc).__name__}).") from None
    if len(blob) > member.file_size:
        raise MRNetError(f"{base} unpacks to more than it declares; refused.")
    return blob
