"""Load a released HyTIP checkpoint (``PSNR-RGB.pth.tar`` / ``MS-SSIM-RGB.pth.tar``) into our modules.

A release file is ``{"epoch": int, "state_dict": {raw_key: tensor}}`` whose keys carry the ``module``
segment that ``nn.DataParallel`` adds (``if_model.module.net.…``). ``remap_state_dict`` is the one mapping
from those keys to ours; ``load_checkpoint`` loads strictly, then builds what is not stored in the file
(intra quality scales, Gaussian CDF tables).
"""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from .entropy_models import GaussianConditional
from .errors import HytipError
from .intra import IntraNet

# The release loader keeps these top-level names whole (they are not wrapped in DataParallel).
_UNWRAPPED = ("feature_frame_generate", "criterion")
_SHOWN = 5  # how many offending keys an error message lists


class CheckpointError(HytipError):
    """The file is not a loadable HyTIP checkpoint for the given model."""


@dataclass(frozen=True)
class CheckpointInfo:
    path: str
    sha256: str        # of the file's bytes, for provenance
    epoch: object
    num_tensors: int


def remap_state_dict(state_dict: dict) -> dict:
    """Release keys → our keys: drop the ``module`` segment after the top-level name, and skip the
    ``Residual.*.mc_generate*`` entries that the release loader also skips (none in the released models)."""
    out = {}
    for key, value in state_dict.items():
        parts = key.split(".")
        if len(parts) > 2 and parts[0] not in _UNWRAPPED and parts[1] == "module":
            parts = parts[:1] + parts[2:]
        if parts[0] == "Residual" and len(parts) > 2 and "mc_generate" in parts[2]:
            continue
        out[".".join(parts)] = value
    return out


def _listing(keys) -> str:
    keys = sorted(keys)
    more = f" (+{len(keys) - _SHOWN} more)" if len(keys) > _SHOWN else ""
    return ", ".join(keys[:_SHOWN]) + more


def _read(path: Path) -> tuple[dict, str]:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read checkpoint ({e})") from e
    try:
        obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for foreign or truncated files
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint (truncated or foreign file): {e}") from e
    if not isinstance(obj, dict) or not isinstance(obj.get("state_dict"), dict):
        found = sorted(obj)[:_SHOWN] if isinstance(obj, dict) else type(obj).__name__
        raise CheckpointError(f"{path}: expected a dict with a 'state_dict' entry, found {found}")
    bad = [k for k, v in obj["state_dict"].items() if not torch.is_tensor(v)]
    if bad:
        raise CheckpointError(f"{path}: state_dict entries that are not tensors: {_listing(bad)}")
    return obj, hashlib.sha256(data).hexdigest()


def load_checkpoint(model: nn.Module, path) -> CheckpointInfo:
    """Strictly load the release checkpoint at ``path`` into ``model`` and prepare it for inference.

    Raises ``CheckpointError`` naming the file and the first missing, unexpected or mis-shaped keys.
    After loading: ``IntraNet.interpolate()`` (64 quality scales) and ``GaussianConditional.update()``
    (CDF tables). Returns the file's sha256 and epoch for provenance.
    """
    path = Path(path)
    obj, sha = _read(path)
    state = remap_state_dict(obj["state_dict"])
    expected = model.state_dict()
    # Gaussian CDF tables may be stored empty (trainer-saved) or filled; update() rebuilds them anyway.
    any_shape = {f"{name}.{buf}" if name else buf
                 for name, mod in model.named_modules() if isinstance(mod, GaussianConditional)
                 for buf in GaussianConditional._TABLE_BUFFERS}
    missing = expected.keys() - state.keys()
    unexpected = state.keys() - expected.keys()
    misshaped = [f"{k} (checkpoint {list(state[k].shape)}, model {list(expected[k].shape)})"
                 for k in expected.keys() & state.keys()
                 if k not in any_shape and state[k].shape != expected[k].shape]
    problems = []
    if missing:
        problems.append(f"missing keys: {_listing(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_listing(unexpected)}")
    if misshaped:
        problems.append(f"mis-shaped keys: {_listing(misshaped)}")
    if problems:
        raise CheckpointError(f"{path}: does not match {type(model).__name__}; " + "; ".join(problems))
    model.load_state_dict(state, strict=True)
    for mod in model.modules():
        if isinstance(mod, IntraNet):
            mod.interpolate()
        elif isinstance(mod, GaussianConditional):
            mod.update()
    return CheckpointInfo(path=str(path), sha256=sha, epoch=obj.get("epoch"), num_tensors=len(state))
