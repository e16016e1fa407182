"""glibc's heap, kept small for a server that many visitors share (a no-op off glibc)."""
from __future__ import annotations

import ctypes
import functools
import inspect


def fewer_malloc_arenas(arenas: int = 1) -> None:
    """glibc gives each thread that allocates its own malloc arena; with Gradio's worker threads each holding
    freed exam buffers, the server's memory grew with the number of visitors. One arena keeps it bounded at
    no cost in throughput here (bench/load_bench.py)."""
    try:
        ctypes.CDLL("libc.so.6").mallopt(-8, arenas)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass


def release_memory() -> None:
    """Give freed memory back to the system: a refused 1 GB input otherwise leaves the server's resident size at
    its peak (glibc keeps freed heap)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def released(fn):
    """An event handler after which freed memory goes back to the system, whether it returned, raised or (a
    generator) finished: glibc otherwise keeps the heap at its peak until the next analysis."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def generator(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            finally:
                release_memory()
        return generator
    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def coroutine(*args, **kwargs):
            try:
                return await fn(*args, **kwargs)
            finally:
                release_memory()
        return coroutine

    @functools.wraps(fn)
    def plain(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        finally:
            release_memory()
    return plain
