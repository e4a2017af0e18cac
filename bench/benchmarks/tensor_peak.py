"""Benchmark: the torch tensors a HyTIP estimate holds at each frame's peak, and where in the network.

This is the memory a GPU must hold per rate point beside the weights, measured on any device:

    python -m bench.benchmarks.tensor_peak --checkpoint CKPT [--size 1920x1024] [--frames 3] [--kernels fast]
        [--top 6] [--threads 2] [--device cpu]

A dispatch mode sees every tensor an operator returns and keeps a weak reference to its storage; the bytes of the
storages alive are summed after each operator, and a frame's peak is their maximum while it is coded. Counted: every
storage made while the sequence is coded (the temporal buffers, every intermediate), once however many views share
it, and the oneDNN (``_mkldnn``) tensors of the exact kernels' blocks on the CPU (``hytip.blocked``) at 4 bytes a
value; the weights are printed apart. Not counted, because they are not torch tensors: on the CPU oneDNN's blocked
copies of an NCHW convolution's input and output while it runs (the exact kernels; by resident memory about the
output's size again, 1.4 GB for a whole 1080p FFN expansion) and the freed memory the allocator keeps for reuse, both in
`codec_speed`'s resident peak; on a GPU cuDNN's workspaces and the caching allocator's free blocks. The tracker costs
one Python call per operator; it does not change any value.
"""
from __future__ import annotations

import argparse
import weakref
from dataclasses import dataclass

import torch
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

import hytip
from bench.benchmarks.codec_speed import clip_frames


@dataclass(frozen=True)
class Alive:
    nbytes: int
    shape: tuple
    made_by: str          # the module whose forward ran the operator ("-" outside any), and the operator


class _TensorRef:
    def __init__(self, t: torch.Tensor):
        self._ref = weakref.ref(t)

    def expired(self) -> bool:
        return self._ref() is None


class LiveTensors(TorchDispatchMode):
    """Storages alive (by address; a storage made where one has died replaces it), their total in bytes after each
    operator, and its peak since ``reset_peak`` with what was alive then, largest first. ``where`` names the code
    running (a module's name)."""

    def __init__(self, where=lambda: "-"):
        super().__init__()
        self.where, self.live = where, {}
        self.total = self.peak = 0
        self.peak_at, self.alive_at_peak = "", ()

    def reset_peak(self) -> None:
        self.peak, self.peak_at, self.alive_at_peak = self.total, "", self._alive()

    def _alive(self) -> tuple:
        return tuple(sorted((a for _, a in self.live.values()), key=lambda a: -a.nbytes))

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        made_by = f"{self.where()} ({func.overloadpacket.__name__})"
        for t in tree_flatten(out)[0]:
            if not isinstance(t, torch.Tensor) or t.device.type == "meta":
                continue
            if t.is_mkldnn:        # opaque: no storage, a tensor of its own
                key, nbytes, ref = ("mkldnn", id(t)), t.numel() * t.element_size(), _TensorRef(t)
            else:
                storage = t.untyped_storage()
                key, nbytes, ref = (str(storage.device), storage.data_ptr()), storage.nbytes(), StorageWeakRef(storage)
            if nbytes and (key not in self.live or self.live[key][0].expired()):
                self.live[key] = (ref, Alive(nbytes, tuple(t.shape), made_by))
        for key in [k for k, (ref, _) in self.live.items() if ref.expired()]:
            del self.live[key]
        self.total = sum(a.nbytes for _, a in self.live.values())
        if self.total > self.peak:
            self.peak, self.peak_at, self.alive_at_peak = self.total, made_by, self._alive()
        return out


def frame_peaks(codec: hytip.Codec, frames, *, kernels: str, qp: int, i_quality: int) -> list:
    """(frame type, peak bytes, where it was reached, the storages alive then) per frame of an estimate of
    ``frames``; a frame's peak counts what earlier frames left alive (the temporal buffers)."""
    stack, hooks = [], []

    def leave(module, args, out):      # a forward hook that returns nothing keeps the output
        stack.pop()

    for name, module in codec._model(kernels).named_modules():
        hooks.append(module.register_forward_pre_hook(lambda m, args, name=name or "model": stack.append(name)))
        hooks.append(module.register_forward_hook(leave))
    live, peaks = LiveTensors(lambda: stack[-1] if stack else "-"), []
    try:
        with live:
            for result in codec.estimate(_reset_before_each(frames, live), qp=qp, i_quality=i_quality,
                                         kernels=kernels):
                peaks.append((result.type, live.peak, live.peak_at, live.alive_at_peak))
    finally:
        for hook in hooks:
            hook.remove()
    return peaks


def _reset_before_each(frames, live: LiveTensors):
    """``frames``, resetting ``live``'s peak as the codec takes each: the codec reads a frame, codes it, returns."""
    for frame in frames:
        live.reset_peak()
        yield frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="HyTIP checkpoint (release or golden)")
    parser.add_argument("--size", default="1920x1024", help="WxH, multiples of 16")
    parser.add_argument("--frames", type=int, default=3, help="frames (I + P-frames)")
    parser.add_argument("--kernels", choices=hytip.codec.KERNELS, default="fast")
    parser.add_argument("--top", type=int, default=6, help="tensors listed per frame, largest first")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--qp", type=int, default=0)
    parser.add_argument("--i-quality", type=int, default=0)
    args = parser.parse_args()

    codec = hytip.load(args.checkpoint, device=args.device, deterministic=True, threads=args.threads)
    model = codec._model(args.kernels)
    weights = sum(t.nbytes for t in (*model.parameters(), *model.buffers()))
    width, height = (int(v) for v in args.size.split("x"))
    print(f"protocol: torch {torch.__version__}, {args.device}, float32 (kernels {args.kernels}), inference mode, "
          f"{args.size}, {args.frames} frames of the bundled clip, QP {args.qp}, I-quality {args.i_quality}; "
          f"torch tensor storages alive (not oneDNN's or cuDNN's own buffers, not the allocator's free memory); "
          f"weights {weights / 2 ** 30:.2f} GB apart")
    # One tensor per frame, made before the count: a sweep reads one frame at a time, not a whole clip.
    frames = [frame.to(args.device, copy=True) for frame in clip_frames(width, height, args.frames)]
    peaks = frame_peaks(codec, frames, kernels=args.kernels, qp=args.qp, i_quality=args.i_quality)
    for k, (kind, peak, at, alive) in enumerate(peaks):
        print(f"frame {k} {kind}: peak {peak / 2 ** 30:.3f} GB of tensors, at {at}")
        for a in alive[:args.top]:
            print(f"    {a.nbytes / 2 ** 20:8.1f} MB {str(a.shape):22s} made by {a.made_by}")


if __name__ == "__main__":
    main()
