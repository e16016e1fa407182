"""mrnet: MRNet knee-MRI predictions explained with Class Activation Maps.

Layers, each importing only those below it (pyproject's import-linter contract): `cli` > `toolchain`
(training, evaluation, figures, benchmarks) > `app` (the web app's server side) > `phantom` (the synthetic knee
generator) and `inputs` (reading exams) > `core` (model, weights, CAMs, analysis, Hub).
Names below are imported on first use, so `import mrnet` (and the CLI's --help) does not load torch.
"""
from importlib import import_module

_EXPORTS = {
    "DISCLAIMER": "core.config", "Analysis": "core.analysis", "analyze": "core.analysis",
    "PLANES": "core.config", "TASKS": "core.config", "WeightsConfig": "core.config",
    "MRNetError": "core.errors", "Exam": "core.exam", "load_exam": "inputs.load", "load_items": "inputs.load",
    "MRNet": "core.model", "Weights": "core.weights", "load_weights": "core.weights", "save_weights": "core.weights",
    "compute_for": "core.compute", "Renderer": "core.render",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mrnet' has no attribute {name!r}")
    return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
