"""The viewer's view (task, CAM method, opacity, mode, the plane last used, a slice per plane, a reviewer's lesion
mark), checked in one place. Whatever a browser, a link or a raw API call sends (any JSON, or nothing), `View.of` gives a view that
is valid for the analysis on screen: each part that names nothing in it falls back to its default. The app,
the link opener, the flags and the zip all read views through it."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from mrnet.core.analysis import Analysis
from mrnet.core.config import DEFAULT_METHOD, DEFAULT_OPACITY, DEFAULT_PALETTE, PALETTES, PLANES
from mrnet.core.errors import MRNetError
from mrnet.core.explain import METHODS

MODES = ("overlay", "slice", "swipe")
MAPS = ("a", "b", "ab")  # compare mode: the first weights' maps, the second's, or a swipe between them


@dataclass(frozen=True)
class Mark:
    """A reviewer's lesion mark in exam pixels of one slice: a point (w = h = 0) or a box from (x, y), w by h."""
    plane: str
    slice: int
    x: int
    y: int
    w: int = 0
    h: int = 0

    @classmethod
    def parse(cls, raw, analysis: Analysis) -> "Mark | None":
        """A mark as the viewer or a link sends it ({plane, slice, x, y, w, h}) -> a Mark inside its slice; None for
        no mark; anything else raises MRNetError with one sentence."""
        if raw is None:
            return None
        keys = ("plane", "slice", "x", "y", "w", "h")
        if not isinstance(raw, dict) or not {"slice", "x", "y"} <= set(raw) or raw.get("plane") not in analysis.exam.volumes or not all(
                isinstance(raw.get(k, 0), int) and not isinstance(raw.get(k, 0), bool) for k in keys[1:]):
            raise MRNetError("The lesion mark is not understood: mark it again on the slice.")
        plane, index, x, y, w, h = (raw.get(k, 0) for k in keys)
        depth, rows, columns = analysis.exam.volumes[plane].shape
        if not 0 <= index < depth:
            raise MRNetError(f"The lesion mark names slice {index} of the {plane} plane, which has {depth} slices.")
        if w < 0 or h < 0:
            raise MRNetError("A lesion mark's box cannot have a negative width or height.")
        if not (0 <= x and 0 <= y and x + w < columns and y + h < rows):
            raise MRNetError(f"The lesion mark lies outside the slice ({columns} x {rows} pixels).")
        return cls(plane, index, x, y, w, h)

    @classmethod
    def from_link(cls, text) -> dict | None:
        """'sagittal,12,100,80,0,0' (a link's mark=) -> the raw mark, or None when it does not parse."""
        parts = text.split(",") if isinstance(text, str) and len(text) < 64 else []
        numbers = [parse_index(part) for part in parts[1:]]
        if len(parts) != 6 or any(n is None for n in numbers):
            return None
        return dict(zip(("plane", "slice", "x", "y", "w", "h"), [parts[0], *numbers]))


@dataclass(frozen=True)
class View:
    task: str
    method: str = DEFAULT_METHOD
    opacity: float = DEFAULT_OPACITY
    mode: str = "overlay"
    plane: str = ""                                        # the plane a link and a flag name
    slices: dict[str, int] = field(default_factory=dict)   # plane -> slice index
    maps: str = "a"                                        # whose maps (MAPS); "a" outside compare mode
    mark: Mark | None = None                               # the reviewer's lesion mark, if any
    palette: str = DEFAULT_PALETTE                         # the maps' colours (config.PALETTES)

    @classmethod
    def of(cls, raw, analysis: Analysis) -> "View":
        """Any value -> a valid view of `analysis`: the task, method and mode must be known, the opacity a
        number in 0..1, each slice an index of its plane; what is not is replaced by its default (the
        decisive plane and each plane's decisive slice for the task)."""
        raw = raw if isinstance(raw, dict) else {}
        task = raw.get("task") if isinstance(raw.get("task"), str) and raw.get("task") in analysis.tasks \
            else next(iter(analysis.tasks))
        result = analysis.tasks[task]
        method = raw.get("method") if isinstance(raw.get("method"), str) and raw.get("method") in METHODS else DEFAULT_METHOD
        opacity = raw.get("opacity")
        opacity = min(max(float(opacity), 0.0), 1.0) if is_number(opacity) else DEFAULT_OPACITY
        mode = raw.get("mode") if raw.get("mode") in MODES else "overlay"
        maps = raw.get("maps") if raw.get("maps") in MAPS else "a"
        palette = raw.get("palette") if raw.get("palette") in PALETTES else DEFAULT_PALETTE
        plane = raw.get("plane") if isinstance(raw.get("plane"), str) and raw.get("plane") in result.planes \
            else result.decisive_plane
        asked = raw.get("slices") if isinstance(raw.get("slices"), dict) else {}
        slices: dict[str, int] = {}
        for p, r in result.planes.items():
            index = asked.get(p)
            ok = isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(analysis.exam.volumes[p])
            slices[p] = index if ok and isinstance(index, int) else r.top_slice
        try:
            mark = Mark.parse(raw.get("mark"), analysis)
        except MRNetError:
            mark = None  # read by the flag save with its sentence (Mark.parse); elsewhere it is only drawn
        return cls(task, method, opacity, mode, plane, slices, maps, mark, palette)

    @classmethod
    def from_link(cls, params: dict, analysis: Analysis) -> tuple["View", list[str]]:
        """A link's query (?task=&method=&plane=&slice=, &maps= in compare mode, &mark= with a lesion mark, &palette=) -> the
        view, and the parameters it named that were ignored because they do not parse or name nothing in this
        case."""
        raw = {k: params.get(k) for k in ("task", "method", "plane", "maps", "palette")}
        raw["mark"] = Mark.from_link(params.get("mark"))
        plane, index = params.get("plane"), parse_index(params.get("slice"))
        if isinstance(plane, str) and plane in PLANES and index is not None:
            raw["slices"] = {plane: index}
        view = cls.of(raw, analysis)
        ignored = [k for k in ("task", "method", "plane", "maps", "palette")
                   if k in params and params[k] != getattr(view, k)]
        if "slice" in params and view.slices.get(view.plane) != index:
            ignored.append("slice")
        if "mark" in params and view.mark is None:
            ignored.append("mark")
        return view, ignored

    def to_dict(self) -> dict:
        return asdict(self)


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def parse_index(text) -> int | None:
    """'12' -> 12; anything else (a superscript digit, a 5,000-digit number, a sign, a list) -> None."""
    if not isinstance(text, str) or not 0 < len(text) <= 5 or not (text.isascii() and text.isdigit()):
        return None
    return int(text)
