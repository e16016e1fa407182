"""Text from outside (a link, a table, a comment) made safe for one of our sentences or a terminal."""
from __future__ import annotations

import re

# control characters other than the newline: a terminal obeys them (ESC sequences), a table breaks on them
CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")
CONTROL_OR_NEWLINE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def quoted(value, limit: int = 40) -> str:
    """A value someone sent, for a sentence: a string as its repr (control characters show as escapes), anything
    else by its type, at most `limit` characters."""
    text = repr(value) if isinstance(value, str) else f"of type {type(value).__name__}"
    return text if len(text) <= limit else text[:limit] + "…'"


def visible_controls(text: str, newline: bool = False) -> str:
    """Control characters written as \\xNN escapes (with `newline`, the newline too: one line of a table)."""
    return (CONTROL_OR_NEWLINE if newline else CONTROL).sub(lambda m: f"\\x{ord(m.group()):02x}", text)
