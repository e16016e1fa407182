"""mrnet: MRNet knee-MRI predictions explained with Class Activation Maps.

The runtime (this package's modules) reads exams and weights, runs the model and explains it; the
offline toolchain (phantoms, training, evaluation, figures, benchmarks) is `mrnet.toolchain` and the
runtime never imports it. Names below are imported on first use, so `import mrnet` (and the CLI's
--help) does not load torch.
"""
from importlib import import_module

_EXPORTS = {
    "DISCLAIMER": "analysis", "Analysis": "analysis", "analyze": "analysis",
    "PLANES": "config", "TASKS": "config", "WeightsConfig": "config",
    "MRNetError": "errors", "Exam": "exam", "load_exam": "inputs", "load_items": "inputs",
    "MRNet": "model", "Weights": "weights", "load_weights": "weights", "save_weights": "weights",
    "compute_for": "compute", "Renderer": "render",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mrnet' has no attribute {name!r}")
    return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
