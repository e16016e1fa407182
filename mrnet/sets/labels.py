"""MRNet's label files, {split}-{task}.csv: `id,label` rows, no header, label 0 or 1. The one reader that the
Cases browser and training share, so that a file one accepts the other accepts too."""
from __future__ import annotations

from pathlib import Path


def case_id(raw: str) -> str:
    """'7', '0007' -> '0007' (MRNet's file names are zero-padded to 4 digits)."""
    return f"{int(raw):04d}"


def few(items: list[str], k: int = 3) -> str:
    """'a', 'a and b', 'a, b and c', 'a, b, c and 4 more'."""
    if len(items) > k:
        return ", ".join(items[:k]) + f" and {len(items) - k} more"
    return " and ".join([", ".join(items[:-1]), items[-1]]) if len(items) > 1 else "".join(items)


def parse_labels(text: str) -> tuple[list[tuple[str, int]], list[str]]:
    """-> ([(case id, label)] in file order, numbers of the lines that are not `id,label`). Blank lines are
    skipped; cells may carry spaces ('0001, 1'); a label is 0 or 1 (or 0.0 / 1.0)."""
    rows, bad = [], []
    for number, line in enumerate(text.removeprefix("\ufeff").splitlines(), 1):
        if not line.strip():
            continue
        cells = [c.strip() for c in line.split(",")]
        if len(cells) != 2 or not cells[0].isdigit() or cells[1] not in ("0", "1", "0.0", "1.0"):
            bad.append(str(number))
            continue
        rows.append((case_id(cells[0]), int(float(cells[1]))))
    return rows, bad


def bad_lines_sentence(csv: Path, bad: list[str]) -> str:
    many = len(bad) > 1
    return (f"{Path(csv).name}: line{'s' if many else ''} {few(bad)} {'are' if many else 'is'} not `id,label` with a "
            "label of 0 or 1")
