"""An exam: one to three planes, each a uint8 volume (S, 256, 256), and what was done to get there. The readers
that make one are in mrnet.inputs."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mrnet.core.config import PLANES
from mrnet.core.errors import MRNetError

SIZE = 256  # every slice is brought to SIZE x SIZE, MRNet's input


@dataclass
class Exam:
    volumes: dict[str, np.ndarray]                    # plane -> uint8 (S, 256, 256)
    notes: list[str] = field(default_factory=list)    # what was rescaled, resized, chosen or skipped
    sources: dict[str, str] = field(default_factory=dict)  # plane -> file name it came from

    @property
    def planes(self) -> list[str]:
        return [p for p in PLANES if p in self.volumes]

    def add(self, plane: str, volume: np.ndarray, source: str, notes: list[str]) -> None:
        if plane in self.volumes:
            raise MRNetError(f"Two inputs give the {plane} plane ({self.sources[plane]} and {source}); give one file per plane.")
        self.volumes[plane] = volume
        self.sources[plane] = source
        self.notes.extend(notes)

    def describe(self) -> dict:
        return {"planes": {p: {"slices": int(v.shape[0]), "source": self.sources.get(p, "")} for p, v in self.volumes.items()},
                "missing_planes": [p for p in PLANES if p not in self.volumes], "notes": list(self.notes)}
