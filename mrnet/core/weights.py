"""A weights folder: config.json + one .safetensors per plane model + README.md model card.

Loading is strict (missing/unexpected keys are named) and verifies each file's sha256 when the
config records one. Nothing here unpickles anything.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from mrnet.core.config import ModelEntry, WeightsConfig
from mrnet.core.errors import MRNetError
from mrnet.core.model import MRNet


@dataclass
class Weights:
    config: WeightsConfig
    models: list[tuple[ModelEntry, MRNet]]  # each file's entry and its model, in eval mode
    source: dict = field(default_factory=dict)  # where they came from: {"kind", "folder", "repo", "revision", ...}

    @property
    def planes(self) -> list[str]:
        return sorted({entry.plane for entry, _ in self.models})

    def for_plane(self, plane: str) -> list[tuple[ModelEntry, MRNet]]:
        """A plane may have one multi-task model (our format) or several single-task ones (converted)."""
        return [(entry, model) for entry, model in self.models if entry.plane == plane]

    def to(self, device) -> "Weights":
        """Move every model to `device` once (mrnet.core.compute picks it); returns self."""
        for _, model in self.models:
            model.to(device).to(memory_format=torch.channels_last)
        return self

    def describe(self) -> dict:
        return {"source": self.source, "tasks": self.config.tasks, "planes": self.planes, **self.config.provenance}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_state_strict(model: MRNet, state: dict[str, torch.Tensor], name: str) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys {missing}")
        if unexpected:
            parts.append(f"unexpected keys {unexpected}")
        raise MRNetError(f"{name} does not match the MRNet architecture: {'; '.join(parts)}.")
    for key, tensor in state.items():
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise MRNetError(f"{name}: {key} has shape {tuple(tensor.shape)}, expected {tuple(expected[key].shape)}.")
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)


def load_model(folder: Path, entry: ModelEntry, verify: bool = True) -> MRNet:
    path = Path(folder) / entry.file
    if not path.is_file():
        raise MRNetError(f"The weights folder lacks {entry.file}, named in config.json.")
    if verify and entry.sha256 and sha256_of(path) != entry.sha256:
        raise MRNetError(f"{entry.file} does not match the sha256 in config.json: the file was changed or damaged; refusing to load it.")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise MRNetError(f"{entry.file} is not a readable safetensors file ({exc}).") from None
    model = MRNet(n_tasks=len(entry.tasks))
    load_state_strict(model, state, entry.file)
    return model.eval()


def load_weights(folder: Path, source: dict | None = None, verify: bool = True) -> Weights:
    folder = Path(folder)
    config = WeightsConfig.load(folder)
    models = [(entry, load_model(folder, entry, verify=verify)) for entry in config.models]
    if not models:
        raise MRNetError(f"{folder}/config.json lists no model files.")
    return Weights(config=config, models=models, source=source or {"kind": "local", "folder": str(folder)})


def save_weights(folder: Path, config: WeightsConfig, models: list[tuple[ModelEntry, MRNet]],
                 dtype=torch.float16) -> WeightsConfig:
    """Write each model as safetensors (fp16 by default: half the size) under its entry's file name, and a
    config.json with every file's sha256. Returns the config as written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for entry, model in models:
        state = {k: v.detach().to(dtype).contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(folder / entry.file), metadata={"plane": entry.plane, "tasks": ",".join(entry.tasks)})
        entries.append(ModelEntry(file=entry.file, plane=entry.plane, tasks=list(entry.tasks),
                                  sha256=sha256_of(folder / entry.file)))
    config.models = entries
    config.planes = sorted({e.plane for e in entries})
    config.save(folder)
    return config
