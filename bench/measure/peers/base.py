"""The interface of a peer adapter and the import of a peer's code from the user's checkout.

A peer's code is never part of hytip-bench: an adapter names where the code lies in the user's checkout (or the
installed package), builds the model without weights and says what one P-frame runs (the encode path), what the
decoder runs (the decode path, on all-zero latents) and which tensors the model keeps for the next frame.
"""
from __future__ import annotations

import contextlib
import importlib
import os
import subprocess
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn

from bench.errors import InputError
from bench.measure.counting import parameter_count


@dataclass(frozen=True)
class Code:
    """What a checkout provides: the imported entry points by name, and where they came from."""
    entry: Dict[str, object]
    folder: str           # the folder imported from ("installed package" for a pip package)
    commit: str           # the checkout's git commit, "" when not a git checkout


class PeerAdapter(ABC):
    name: str             # the codec's label, as in the published tables
    origin: str           # where its code comes from
    subfolder: str = ""   # the peer's folder inside the repository checkout
    package: str = "src"  # the top-level package its modules live in
    entry_points: Tuple[str, ...] = ()   # "module:attribute", relative to the peer's folder
    align: int = 64       # frames are padded to a multiple of this
    notes: Tuple[Tuple[str, str], ...] = ()   # (encode, decode, parameters or all; what its count stands in for)

    def load(self, source: Optional[Path]) -> Code:
        """Import the entry points from ``source`` (the repository's root or the peer's own folder)."""
        if source is None:
            raise InputError(f"{self.name}: give the folder of your checkout of {self.origin} with --source")
        return import_checkout(self.name, Path(source), self.subfolder, self.package, self.entry_points)

    @abstractmethod
    def build(self, code: Code) -> Tuple[nn.Module, Optional[nn.Module]]:
        """(the P-frame model, the I-frame model or None), randomly initialised: counts do not need weights."""

    @abstractmethod
    def initial_state(self, model: nn.Module, frame: torch.Tensor):
        """The state right after an I-frame that decoded to ``frame``."""

    @abstractmethod
    def encode(self, model: nn.Module, x: torch.Tensor, state):
        """One P-frame through the encoder (the model's full forward: motion estimation, analysis, entropy
        parameters and the reconstruction it keeps); returns the next state."""

    @abstractmethod
    def decode(self, model: nn.Module, frame: torch.Tensor, state):
        """One P-frame through the decoder, its latents all zeros (the entropy decoder is not run)."""

    @abstractmethod
    def buffer(self, state) -> Dict[str, torch.Tensor]:
        """The tensors the model keeps for the next frame (the decoded frame where it is one of them), by name."""

    def pframe_parameters(self, model: nn.Module) -> int:
        """The paper's model size: the parameters of what codes P-frames."""
        return parameter_count(model)


def _git_commit(folder: Path) -> str:
    try:
        result = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return result.stdout.strip() if result.returncode == 0 else ""


@contextlib.contextmanager
def _isolated_package(base: Path, package: str):
    """``base`` first on sys.path and no module named ``package`` loaded, for the import; afterwards the modules
    imported from ``base`` are dropped again (the objects built from them live on), so that peers that all call
    their package ``src`` do not see each other, nor the caller's own ``src``."""
    def ours(name):
        return name == package or name.startswith(package + ".")
    saved = {name: module for name, module in sys.modules.items() if ours(name)}
    for name in saved:
        del sys.modules[name]
    sys.path.insert(0, str(base))
    environment = os.environ.get("SUPPRESS_CUSTOM_KERNEL_WARNING")
    os.environ["SUPPRESS_CUSTOM_KERNEL_WARNING"] = "1"   # DCVC's notice that its CUDA kernels fall back to torch
    try:
        yield
    finally:
        if environment is None:
            del os.environ["SUPPRESS_CUSTOM_KERNEL_WARNING"]
        sys.path.remove(str(base))
        for name in [n for n in sys.modules if ours(n)]:
            del sys.modules[name]
        sys.modules.update(saved)


def import_checkout(peer: str, source: Path, subfolder: str, package: str, entry_points) -> Code:
    """Import ``entry_points`` ("module:attribute") of ``package`` from ``source``, which is the repository's root
    (the peer's code in ``subfolder``) or the peer's folder itself. Errors name the folder and what was expected."""
    if not source.is_dir():
        raise InputError(f"{source}: no such folder (expected your checkout of {peer}'s code)")
    modules = dict.fromkeys(e.split(":")[0] for e in entry_points)
    files = [Path(*m.split(".")).with_suffix(".py") for m in modules]
    candidates = [source / subfolder, source] if subfolder else [source]
    base = next((c for c in candidates if all((c / f).is_file() for f in files)), None)
    if base is None:
        where = " or ".join(str(c) for c in candidates)
        missing = [str(f) for f in files if not any((c / f).is_file() for c in candidates)]
        raise InputError(f"{source}: not a checkout of {peer}'s code: {where} lacks {', '.join(missing)}")
    entry = {}
    with _isolated_package(base, package):
        for point in entry_points:
            module_name, attribute = point.split(":")
            try:
                module = importlib.import_module(module_name)
            except Exception as exc:   # the peer's own import failing: a missing dependency, a broken file
                raise InputError(f"{base / Path(*module_name.split('.')).with_suffix('.py')}: importing "
                                 f"{module_name} failed: {type(exc).__name__}: {exc}") from exc
            if not hasattr(module, attribute):
                raise InputError(f"{base / Path(*module_name.split('.')).with_suffix('.py')}: no {attribute} "
                                 f"(the entry point {point} of {peer})")
            entry[point] = getattr(module, attribute)
    return Code(entry, str(base), _git_commit(base))
