"""The weights' description: config.json, as a small dataclass (lives next to the model, as in timm)."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mrnet.core.errors import MRNetError

FORMAT_VERSION = 1
PLANES = ("axial", "coronal", "sagittal")
TASKS = ("abnormal", "acl", "meniscus")
TASK_TITLES = {"abnormal": "Abnormality", "acl": "ACL tear", "meniscus": "Meniscal tear"}


@dataclass
class ModelEntry:
    """One safetensors file: the model of one plane, with one logit per task in `tasks` order."""
    file: str
    plane: str
    tasks: list[str]
    sha256: str = ""


@dataclass
class Normalization:
    """x = (uint8 - mean) / std, applied to every slice. The blog code used mean 0, std 1 (raw 0-255);
    the Stanford code used mean 58.09, std 49.73."""
    mean: float = 58.09
    std: float = 49.73


@dataclass
class WeightsConfig:
    tasks: list[str]
    planes: list[str]
    models: list[ModelEntry]
    normalization: Normalization = field(default_factory=Normalization)
    # fusion[task] = {"intercept": b, "coef": {plane: w}}: logistic regression over plane logits.
    fusion: dict = field(default_factory=dict)
    # free-form: trained_on, command, metrics, intended_use, license, ...
    provenance: dict = field(default_factory=dict)
    # ood[plane]: statistics of the training exams' head features (mrnet.core.ood); empty: no check possible
    ood: dict = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def model_for(self, plane: str) -> ModelEntry | None:
        return next((m for m in self.models if m.plane == plane), None)

    def to_json(self) -> str:
        """Indented, except the out-of-distribution statistics: one line per plane (thousands of numbers)."""
        data = asdict(self)
        ood = data.pop("ood")
        text = json.dumps(data, indent=2, sort_keys=False)
        if ood:
            planes = ",\n".join(f"    {json.dumps(plane)}: {json.dumps(stats)}" for plane, stats in ood.items())
            text = text[:-2] + f',\n  "ood": {{\n{planes}\n  }}\n}}'
        return text + "\n"

    def save(self, folder: Path) -> None:
        (Path(folder) / "config.json").write_text(self.to_json())

    @classmethod
    def from_dict(cls, raw: dict) -> "WeightsConfig":
        try:
            version = int(raw.get("format_version", 0))
            if version != FORMAT_VERSION:
                raise MRNetError(f"config.json has format_version {version}; this version of mrnet reads {FORMAT_VERSION}.")
            models = [ModelEntry(**m) for m in raw["models"]]
            cfg = cls(
                tasks=list(raw["tasks"]),
                planes=list(raw["planes"]),
                models=models,
                normalization=Normalization(**raw.get("normalization", {})),
                fusion=dict(raw.get("fusion", {})),
                provenance=dict(raw.get("provenance", {})),
                ood=dict(raw.get("ood", {})),
                format_version=version,
            )
        except MRNetError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise MRNetError(f"config.json is not a valid mrnet weights config ({type(exc).__name__}: {exc}).") from None
        cfg.validate()
        return cfg

    @classmethod
    def load(cls, folder: Path) -> "WeightsConfig":
        path = Path(folder) / "config.json"
        if not path.is_file():
            raise MRNetError(f"{folder} is not a weights folder: it has no config.json.")
        try:
            raw = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise MRNetError(f"{path} is not readable JSON ({exc}).") from None
        if not isinstance(raw, dict):
            raise MRNetError(f"{path} must hold a JSON object.")
        return cls.from_dict(raw)

    def validate(self) -> None:
        for plane in self.planes:
            if plane not in PLANES:
                raise MRNetError(f"config.json names an unknown plane {plane!r}; planes are {', '.join(PLANES)}.")
        if not self.tasks:
            raise MRNetError("config.json lists no tasks.")
        for m in self.models:
            if m.plane not in self.planes:
                raise MRNetError(f"config.json: model file {m.file} is for plane {m.plane!r}, which is not in planes.")
            unknown = set(m.tasks) - set(self.tasks)
            if unknown:
                raise MRNetError(f"config.json: model file {m.file} has tasks {sorted(unknown)} not in tasks.")
            if "/" in m.file or "\\" in m.file or m.file.startswith("."):
                raise MRNetError(f"config.json: model file name {m.file!r} must be a plain file name in the folder.")
        if self.normalization.std <= 0:
            raise MRNetError("config.json: normalization.std must be positive.")

# Shown wherever a prediction is (the app, the report, the CLI): the weights are ours, trained on phantoms.
DISCLAIMER = ("Research demo, not for diagnosis. The bundled weights were trained on synthetic knee "
              "phantoms, not on patients.")

# Lesion masks are uint8 bit fields aligned with the slices (the folder format, the phantom set, the viewer).
MASK_BITS = {"acl": 1, "meniscus": 2, "other": 4}
TASK_BITS = {"abnormal": 7, "acl": 1, "meniscus": 2}   # abnormal: any lesion

DEFAULT_METHOD = "shapley"  # the CAM method shown first, and the one that picks a task's top slice
DILATE_PX = 15          # the pointing game's tolerance in pixels (Zhang et al.)
# the CAM's colours: jet (the field's habit) or viridis (perceptually uniform, readable with red-green colour blindness)
PALETTES = ("jet", "viridis")
DEFAULT_PALETTE = "jet"
DEFAULT_OPACITY = 0.4  # the CAM's weight over the slice, wherever an overlay is drawn (the viewer gets it too)
