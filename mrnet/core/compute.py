"""Where and how the model runs, chosen once by the caller (nanoGPT's `ctx`): a device, an autocast
precision and channels_last. Inference, training and evaluation all run the model through one of these.

precision "auto": bf16 on CUDA where the card has it (else fp16), bf16 on a CPU with native bf16
kernels (AVX-512 BF16 / AMX), else fp32 (emulated bf16 is slower than fp32).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from mrnet.core.errors import MRNetError
from mrnet.core.model import to_input

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def bf16_supported() -> bool:
    """True where oneDNN has native bf16 kernels (AVX-512 BF16 / AMX); elsewhere bf16 is emulated and slow."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:  # older torch without the op
        return False


@dataclass(frozen=True)
class Compute:
    device: torch.device
    precision: str          # "fp32", "bf16" or "fp16": the autocast dtype of the convolutions

    def autocast(self):
        dtype = DTYPES[self.precision]
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=dtype)

    def input(self, x: torch.Tensor) -> torch.Tensor:
        """A batch of slices on the device, in the memory format the convolutions run fastest in."""
        return x.to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)

    def slices(self, volume, normalization) -> torch.Tensor:
        """uint8 slices (S, H, W) -> the model's input on the device (normalised there)."""
        return self.input(to_input(volume, normalization.mean, normalization.std, self.device))


def resolve_device(device: str = "auto") -> torch.device:
    if device in ("", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, ValueError):
        raise MRNetError(f"Unknown device {device!r}; use auto, cpu or cuda (cuda:N).") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise MRNetError(f"Device {device!r} was asked for, but this machine has no CUDA GPU that torch can use.")
    if chosen.type not in ("cpu", "cuda"):
        raise MRNetError(f"Device {device!r} is not supported; use auto, cpu or cuda.")
    return chosen


def compute_for(device: str = "auto", precision: str = "auto") -> Compute:
    """The device and precision a caller asked for, with "auto" resolved for this machine."""
    chosen = resolve_device(device)
    if precision not in PRECISIONS:
        raise MRNetError(f"Unknown precision {precision!r}; use {', '.join(PRECISIONS)}.")
    if precision == "auto":
        if chosen.type == "cuda":
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            precision = "bf16" if bf16_supported() else "fp32"
    if chosen.type == "cpu" and precision == "fp16":
        raise MRNetError("fp16 runs on CUDA only; on the CPU use bf16 or fp32.")
    return Compute(device=chosen, precision=precision)


def for_zero_gpu(fn, duration_s=60):
    """On a ZeroGPU Hugging Face Space (the `spaces` package, SPACES_ZERO_GPU=true) `fn` gets a GPU for at most
    `duration_s` per call, through `spaces.GPU`; anywhere else (no `spaces`, or not ZeroGPU) it is `fn` itself.
    `duration_s` may be a function of fn's arguments (spaces.GPU calls it per call: a long exam asks for more)."""
    try:
        import spaces
    except ImportError:
        return fn
    return spaces.GPU(duration=duration_s)(fn)
