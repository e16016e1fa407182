"""A wall-clock cap on reading one exam (MRNET_MAX_READ_SECONDS): the readers call `check` between units of
work (a file, a zip member, a DICOM file, a slice), so that no input, whatever it is made of, holds an analysis
slot for long. The deadline lives in a context variable: each request's thread has its own."""
from __future__ import annotations

import time
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from mrnet.core.errors import MRNetError

_deadline: ContextVar[tuple[float, float] | None] = ContextVar("mrnet_read_deadline", default=None)


@contextmanager
def reading(seconds: float):
    token = _deadline.set((time.monotonic() + seconds, seconds))
    try:
        yield
    finally:
        _deadline.reset(token)


def check(name: str) -> None:
    found = _deadline.get()
    if found is not None and time.monotonic() >= found[0]:
        raise MRNetError(f"Reading the exam took longer than {found[1]:g} s, the most allowed (stopped at "
                         f"{Path(name).name}); give fewer or smaller files.")
