"""HyTIP (ICCV 2025) in our own PyTorch: loads the released checkpoints, reproduces the official numerics,
and codes sequences with real entropy coding.

    codec = hytip.load("PSNR-RGB.pth.tar", device="cpu")
    for f in codec.estimate(frames, qp=0, i_quality=0): ...          # estimated rates (forward path)
    for f in codec.compress(frames, "clip.hytip", qp=0, i_quality=0): ...
    for f in codec.decompress("clip.hytip"): ...                      # == the encoder's reconstructions
"""
from .bitstream import BitstreamError
from .checkpoint import CheckpointError, CheckpointInfo
from .codec import Codec, CodecInputError, DecodeError, FrameResult, NumericError, load, set_deterministic
from .entropy_coding import EntropyCodingError
from .errors import HytipError
from .gop import FramePlan, PlanError, iter_plan, pad_to_multiple, plan_frames, unpad
from .model import HyTIP

__all__ = [
    "BitstreamError", "CheckpointError", "CheckpointInfo", "Codec", "CodecInputError", "DecodeError",
    "EntropyCodingError", "FramePlan", "FrameResult", "HyTIP", "HytipError", "NumericError", "PlanError",
    "iter_plan", "load", "pad_to_multiple", "plan_frames", "set_deterministic", "unpad",
]
