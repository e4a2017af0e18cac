"""Count a peer codec under HyTIP's protocol (bench.measure.counting): kMAC/pixel of one P-frame's encode and decode
paths, parameters and the temporal buffer, from the adapter of ``bench.measure.peers``.

The protocol is HyTIP's (``bench.measure.complexity``): all-ones frames; an I-frame's output (the frame itself)
starts the state, frame 1 (a P-frame) fills it, frame 2 is counted; kMAC/pixel = MACs / (W*H) / 1e3 at the padded
size, which the size must already be (a multiple of the peer's alignment).
"""
from __future__ import annotations

import contextlib
import importlib.metadata
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

import torch

from bench.errors import InputError
from bench.measure.counting import (
    DEFAULT_DECONV_RULE,
    UNSEEN_RULES,
    PathCount,
    TemporalBuffer,
    count_path,
    counter_text,
    parameter_count,
    temporal_buffer_of,
)
from bench.measure.peers import get_peer

COUNTED = ("frame 2 of a GOP on all-ones frames: the I-frame's output (the frame) starts the state, frame 1 "
           "(a P-frame) fills it")
PATH_TEXT = {"encode": "the P-frame's full forward: everything its encoder runs, the reconstruction it keeps for the "
                       "next frame and the rate estimate included",
             "decode": "what its decoder runs for the P-frame: no motion estimation, no analysis transforms"}


@dataclass(frozen=True)
class PeerComplexity:
    codec: str
    origin: str
    folder: str
    commit: str
    width: int
    height: int
    deconv_rule: str
    encode: PathCount
    decode: PathCount
    parameters_total: int
    model_size: int
    buffer: TemporalBuffer
    notes: Tuple[Tuple[str, str], ...]   # (encode, decode, parameters or all, text)
    seconds: float

    def kmac_per_pixel(self, path: str) -> float:
        return getattr(self, path).macs / (self.width * self.height) / 1e3

    def _notes(self, *topics) -> str:
        return "".join(f"; {text}" for topic, text in self.notes if topic in topics)

    def protocol(self, path: str) -> str:
        return (f"{counter_text(self.deconv_rule)}; {path}: {PATH_TEXT[path]}{self._notes(path, 'all')}; {COUNTED}; "
                f"kMAC/pixel = MACs/(W*H)/1e3 at {self.width}x{self.height}; not counted: what ptflops cannot see "
                "(listed apart), entropy coding, the I-frame")

    def configuration(self) -> dict:
        """A complexity.json configuration (the keys HyTIP's has), for ``report --complexity``."""
        pixels = self.width * self.height
        entry = {"codec": self.codec, "model": "architecture", "origin": self.origin, "source": self.folder,
                 "source_commit": self.commit, "size": f"{self.width}x{self.height}",
                 "parameters_total": self.parameters_total, "model_size": self.model_size,
                 "temporal_buffer_channels": self.buffer.total_channel_equivalent,
                 "temporal_buffer_tensors": {t.name: [t.channels, t.scale] for t in self.buffer.tensors},
                 "counter": f"ptflops {importlib.metadata.version('ptflops')}", "deconv_rule": self.deconv_rule,
                 "protocol": f"model size: the P-frame model's parameters{self._notes('parameters')}; "
                             f"{self.buffer.protocol}"}
        for path, prefix in (("encode", "enc"), ("decode", "dec")):
            entry[f"{prefix}_kmac_per_pixel"] = self.kmac_per_pixel(path)
            entry[f"{prefix}_kmac_protocol"] = self.protocol(path)
            entry[f"{prefix}_unseen"] = {u.op: {"calls": u.calls, "kmac_per_pixel": u.macs / pixels / 1e3,
                                                "rule": UNSEEN_RULES[u.op]} for u in getattr(self, path).unseen}
        return entry


class _NoCuda:
    """Where there is no GPU: a CUDA event, stream or stream context that does nothing, for peers that time their
    paths or overlap their entropy coding on CUDA streams (DCVC-FM's decoder, DCVC-RT)."""

    def __init__(self, *args, **kwargs):
        pass

    def __getattr__(self, name):
        return lambda *args, **kwargs: None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@contextlib.contextmanager
def _without_cuda():
    """torch.cuda's synchronize, Event, Stream and stream as no-ops while a peer is counted without a GPU."""
    if torch.cuda.is_available():
        yield
        return
    names = ("synchronize", "Event", "Stream", "stream")
    originals = {name: getattr(torch.cuda, name) for name in names}
    for name in names:
        setattr(torch.cuda, name, _NoCuda)
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(torch.cuda, name, original)


def count_peer(name: str, source: Optional[Path], width: int, height: int,
               deconv_rule: str = DEFAULT_DECONV_RULE) -> PeerComplexity:
    """Count the peer ``name`` from ``source`` (its checkout; None for an installed package) at ``width`` x
    ``height``."""
    adapter = get_peer(name)
    if width <= 0 or height <= 0 or width % adapter.align or height % adapter.align:
        raise InputError(f"frame size {width}x{height}: {adapter.name} codes frames padded to a multiple of "
                         f"{adapter.align}; give such a size")
    code = adapter.load(source)
    start = time.perf_counter()
    model, intra = adapter.build(code)
    model.eval()
    frame = torch.ones(1, 3, height, width)
    with torch.no_grad(), _without_cuda():
        state = adapter.encode(model, frame, adapter.initial_state(model, frame))
        encode = count_path(model, lambda: adapter.encode(model, frame, state), deconv_rule=deconv_rule)
        decode = count_path(model, lambda: adapter.decode(model, frame, state), deconv_rule=deconv_rule)
    buffer = temporal_buffer_of(adapter.buffer(state), height, width, "by the model after frame 1 (a P-frame)")
    return PeerComplexity(
        codec=adapter.name, origin=adapter.origin, folder=code.folder, commit=code.commit, width=width,
        height=height, deconv_rule=deconv_rule, encode=encode, decode=decode,
        parameters_total=parameter_count(model) + (parameter_count(intra) if intra is not None else 0),
        model_size=adapter.pframe_parameters(model), buffer=buffer, notes=adapter.notes,
        seconds=time.perf_counter() - start)
