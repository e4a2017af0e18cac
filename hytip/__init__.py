"""HyTIP (ICCV 2025) in our own PyTorch: loads the released checkpoints, reproduces the official numerics,
and codes sequences with real entropy coding.

    codec = hytip.load("PSNR-RGB.pth.tar", device="cpu")
    for f in codec.estimate(frames, qp=0, i_quality=0): ...          # estimated rates (forward path)
    for f in codec.compress(frames, "clip.hytip", qp=0, i_quality=0): ...
    for f in codec.decompress("clip.hytip"): ...                      # == the encoder's reconstructions
"""
from __future__ import annotations

import importlib

# The public names and their modules. They are imported on first use (PEP 562), so that importing hytip, or catching
# hytip.errors.HytipError, loads neither torch nor compressai (3-4 s and 0.8 GB together): commands that never code
# a frame (bdrate, report, datasets) start fast.
_EXPORTS = {
    "BitstreamError": "bitstream", "CheckpointError": "checkpoint", "CheckpointInfo": "checkpoint",
    "Codec": "codec", "CodecInputError": "codec", "DecodeError": "codec", "FrameResult": "codec",
    "NumericError": "codec", "load": "codec", "set_deterministic": "codec", "EntropyCodingError": "entropy_coding",
    "HytipError": "errors", "FramePlan": "gop", "PlanError": "gop", "iter_plan": "gop", "pad_to_multiple": "gop",
    "plan_frames": "gop", "unpad": "gop", "HyTIP": "model",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    else:  # a submodule (hytip.fast), as when importing the package imported them all
        try:
            value = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module 'hytip' has no attribute {name!r}") from None
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
