"""Text a visitor or a file controls, made safe where it enters the page: escaped for Markdown or HTML, on one
line, and cut to a length."""
from __future__ import annotations

import html

HTML_SPECIAL = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}


def markdown_text(text, limit: int = 500) -> str:
    """Text a visitor controls (a link's parameters, file and series names, DICOM text, a message that quotes
    them) as Markdown that shows exactly that text: no tag, link, image or autolink can come out of it. Every
    ASCII punctuation character is escaped (CommonMark allows a backslash before any of them; the HTML ones
    become entities), so only letters, digits, spaces and non-ASCII text pass as they are. Cut to `limit`
    characters and kept on one line."""
    return "".join(HTML_SPECIAL.get(c) or ("\\" + c if c.isascii() and not c.isalnum() and c != " " else c)
                   for c in one_line(text, limit))


def html_text(text, limit: int = 500) -> str:
    """Visitor-controlled text inside HTML (gr.Error's modal renders its message as HTML)."""
    return html.escape(one_line(text, limit))


def one_line(text, limit: int) -> str:
    text = " ".join(str(text).split())
    return text[:limit] + ("…" if len(text) > limit else "")
