"""Sequence coding with HyTIP: the official protocol around the model, in two rate modes.

* ``Codec.estimate(frames, ...)``: the forward path; the rate of every frame is estimated from the
  likelihoods (Σ −log2 p, as the paper's tables), nothing is entropy coded. ``kernels="fast"`` runs the fast
  kernels (``hytip.fast``), ``kernels="bf16"`` those with the inter coder's transforms in bfloat16, ``"tf32"``
  the exact ones with TensorFloat-32 on CUDA (``KERNELS``); ``Codec.estimate_points`` codes several rate points in
  one pass, as one batch.
* ``Codec.compress(frames, path, ...)`` runs the same single pass, entropy codes its symbols (rANS,
  ``hytip.entropy_coding``) and writes our container (``hytip.bitstream``); ``Codec.decompress(path)`` reads
  it back. On the same device and settings the decoded frames equal the encoder's reconstructions exactly;
  every frame record carries a CRC32 of its coding parameters and symbols, and a decoder that lost sync, or
  a header that does not belong with the strings, is reported as a ``DecodeError``.

Protocol (``hytip.gop``): frames are padded to a multiple of 16 and coded as an I-frame, then P-frames, the
temporal buffers reset at every I-frame (intra period, scene cuts), ``predict`` off for the first P-frame after
an I-frame, ``ref_feature`` dropped every ``RESET_INTERVAL`` frames; the next reference is the clamped
reconstruction at the padded size, and outputs are cropped back.
"""
from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import torch

from . import bitstream as bs
from . import entropy_coding as ec
from .allocator import keep_freed_memory
from .blocked import blocked_model
from .checkpoint import CheckpointInfo, load_checkpoint
from .entropy_models import estimate_bpp
from .errors import HytipError
from .fast import FAST_KERNELS, fast_input, fast_model
from .gop import GOP_SIZE, FramePlan, iter_plan, pad_to_multiple, padding, plan_frames, unpad
from .inter import frame_type_index
from .intra import PAD as INTRA_PAD
from .model import HyTIP, TemporalState

MAX_INDEX = bs.MAX_INDEX
# "exact" and "tf32" run the model itself (NCHW; on the CPU "exact" runs a copy with its blocks in oneDNN's blocked
# layout, the same values: hytip.blocked), "fast" and "bf16" a copy (hytip.fast). On CUDA every kernel set but
# "tf32" computes float32 convolutions and matrix products in float32: PyTorch's default lets cuDNN use TensorFloat-32
# (10-bit mantissa) on Ampere and later GPUs, which the official code, leaving that default, does.
KERNELS = ("exact", *FAST_KERNELS, "tf32")
I_COMPONENTS = ("y", "z")
P_COMPONENTS = ("mv_y", "mv_z", "y", "z")        # also the order of the P-frame strings' symbol groups


class CodecInputError(HytipError):
    """Frames or coding parameters the codec cannot code."""


class NumericError(HytipError):
    """The model's arithmetic overflowed (NaN or inf) on a frame: a checkpoint and input it cannot code."""


class DecodeError(HytipError):
    """A bitstream that does not decode with this model (foreign checkpoint, lost sync, bad strings)."""


@dataclass(frozen=True)
class FrameResult:
    """One coded (or decoded) frame.

    ``quality``: the I-frame quality index for I-frames, the QP for P-frames. ``est_bits``: estimated bits
    per component (I: y, z; P: mv_y, mv_z, y, z), None for decoded frames. ``string_bytes``: real bytes of
    each entropy-coded string (I: 1, P: 7 = mv_y, mv_z, y0..y3, z), None in estimated mode. ``recon``: the
    reconstruction [3, H, W] in [0, 1] at the input size, on the model's device.
    """

    number: int
    type: str
    frame_idx: int
    quality: int
    est_bits: dict[str, float] | None
    string_bytes: tuple[int, ...] | None
    recon: torch.Tensor

    @property
    def num_pixels(self) -> int:
        return self.recon.shape[-2] * self.recon.shape[-1]

    @property
    def est_bits_total(self) -> float:
        return sum(self.est_bits.values())

    @property
    def est_bpp(self) -> dict[str, float]:
        return {k: v / self.num_pixels for k, v in self.est_bits.items()}

    @property
    def est_bpp_total(self) -> float:
        return self.est_bits_total / self.num_pixels

    @property
    def bytes_total(self) -> int:
        return sum(self.string_bytes)

    @property
    def bpp(self) -> float:
        """Real rate of the frame's strings (container overhead excluded)."""
        return 8 * self.bytes_total / self.num_pixels


def set_deterministic(threads: int = 1) -> None:
    """Settings for bit-exact reruns (process-wide): deterministic algorithms, no cuDNN autotuning, and a
    fixed CPU thread count (oneDNN's rounding can depend on it; encoder and decoder must use the same).
    One thread is the official test harness's setting, with which the golden vectors are reproduced exactly; torch
    then runs 1x1 convolutions through MKL, whose kernels depend on the CPU unless ``MKL_CBWR`` fixes them (the
    tests set COMPATIBLE, the golden run's values: tests/conftest.py)."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read at the first cuBLAS call
    torch.use_deterministic_algorithms(True)
    try:
        import torch.utils.deterministic as det  # torch >= 2.2
        # Filling every new tensor with NaN only guards against reads of uninitialised memory, which this model
        # never does: it costs ~9 % of a P-frame on the CPU and changes no output.
        det.fill_uninitialized_memory = False
    except ImportError:
        pass
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.set_num_threads(threads)


@contextmanager
def _tf32(allowed: bool):
    """TensorFloat-32 in CUDA convolutions and matrix products on or off (process-wide flags), restored after."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = allowed
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def _check_index(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INDEX:
        raise CodecInputError(f"{name}: expected an integer in 0..{MAX_INDEX}, found {value!r}")
    return value


def _frame_crc(p: FramePlan, quality: int, size, symbols) -> int:
    """The record's check value: CRC32 of the frame's coding parameters (number, type, quality index, size)
    then of its symbols in string order. A decoder that lost sync, or a header or record that does not
    belong with the strings, gives another value."""
    params = torch.tensor([p.number, bs.FrameType[p.type], quality, *size])
    return ec.symbols_crc32([params, *symbols])


# Where coding needs a value on the host, the only places (a GPU waits for the device there; tests/test_fake_cuda.py
# runs every CUDA path with these replaced and nothing else): an input frame's value check (on the host, before the
# frame moves), a frame's estimated bits and its finiteness check. Rate indexes are checked as the host's ints; entropy
# coding (real mode) reads its symbols on the host in hytip.entropy_coding.
HOST_POINTS = ("_check_values", "_bits", "_check_finite")


def _check_values(where: str, x: torch.Tensor) -> None:
    """Refuse a frame with values outside [0, 1]; checked where the frame is (a read frame: on the CPU, before its
    copy to the model's device), so that a GPU waits for no value here."""
    if not bool(torch.isfinite(x).all()):
        raise CodecInputError(f"{where}: contains NaN or infinite values")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0 or hi > 1:
        raise CodecInputError(f"{where}: values must lie in [0, 1], found {lo:.4g}..{hi:.4g}")


def _bits(likelihood: torch.Tensor) -> float:
    return float(estimate_bpp(likelihood, 1).sum())


def _check_finite(where: str, recon: torch.Tensor, bits: list[dict[str, float]]) -> None:
    """Refuse a frame whose reconstruction or rate is NaN or inf, before anything is entropy coded."""
    bad = int((~torch.isfinite(recon)).sum())
    if bad or not all(math.isfinite(v) for b in bits for v in b.values()):
        rates = "; ".join(", ".join(f"{k} {v:.6g}" for k, v in b.items()) for b in bits)
        raise NumericError(f"{where}: the model's output is not finite ({bad} NaN or inf values in the reconstruction; "
                           f"rates {rates}): its arithmetic overflows on this input with this checkpoint")


class _Tables:
    """Entropy-coder tables of one model, built once."""

    def __init__(self, model: HyTIP):
        self.intra_z = ec.factorized_table(model.if_model.net.bit_estimator_z)
        self.intra_y = ec.intra_gaussian_table()
        self.mv_gc = model.motion.gaussian_conditional
        self.y_gc = model.inter.context_model.gaussian_conditional
        self.mv_y = ec.CdfTable.from_gaussian_conditional(self.mv_gc)
        self.y = ec.CdfTable.from_gaussian_conditional(self.y_gc)
        self.mv_z = ec.factorized_table(model.motion.bit_estimator_z_mv)
        self.z = ec.factorized_table(model.inter.bit_estimator_z)


class _StringSource:
    """``hytip.model.LatentSource`` reading the 7 strings of a P-frame; keeps the symbols for the CRC."""

    def __init__(self, strings: tuple[bytes, ...], tables: _Tables, device):
        self.strings, self.t, self.device = strings, tables, device
        self.symbols: dict[str, list[torch.Tensor]] = {}

    def _take(self, key: str, data: bytes, indexes: torch.Tensor, table: ec.CdfTable) -> torch.Tensor:
        sym = ec.decode(data, indexes, table)
        self.symbols.setdefault(key, []).append(sym)
        return sym.to(device=self.device, dtype=torch.float32)

    def mv_z(self, shape):
        return self._take("mv_z", self.strings[1], ec.channel_indexes(shape), self.t.mv_z)

    def mv_y(self, prior):
        return self._take("mv_y", self.strings[0], self.t.mv_gc.build_indexes(prior.scales), self.t.mv_y)

    def z(self, shape):
        return self._take("z", self.strings[6], ec.channel_indexes(shape), self.t.z)

    def y_step(self, step, scales, means, mask):
        return self._take("y", self.strings[2 + step], self.t.y_gc.build_indexes(scales), self.t.y)

    def coded_symbols(self) -> list[torch.Tensor]:
        return [s for key in P_COMPONENTS for s in self.symbols.get(key, [])]


class Codec:
    """A loaded HyTIP model with the sequence API (see the module docstring). Build it with ``hytip.load``."""

    def __init__(self, model: HyTIP, checkpoint: CheckpointInfo, deterministic: bool = False):
        self.model = model.eval()
        cpu = next(model.parameters()).device.type == "cpu"
        self._models = {"exact": blocked_model(self.model) if cpu else self.model, "tf32": self.model}
        self.checkpoint = checkpoint
        self.deterministic = deterministic
        self.checkpoint_id = bytes.fromhex(checkpoint.sha256)[:bs.CHECKPOINT_ID_BYTES]

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @cached_property
    def _tables(self) -> _Tables:
        return _Tables(self.model)

    def _model(self, kernels: str) -> HyTIP:
        """The model of a kernels value; the fast copies are made on first use."""
        if kernels not in KERNELS:
            raise CodecInputError(f"kernels {kernels!r}: expected one of {', '.join(KERNELS)}")
        if kernels == "tf32" and self.device.type != "cuda":
            raise CodecInputError(f"kernels 'tf32': TensorFloat-32 exists on CUDA devices only; this codec runs on "
                                  f"{self.device}")
        # Where a GPU has no bfloat16, CUDA autocast would fall back to float32 with a warning, under a bf16 label.
        if kernels == "bf16" and self.device.type == "cuda":
            with torch.cuda.device(self.device):
                if not torch.cuda.is_bf16_supported():
                    raise CodecInputError(f"kernels 'bf16': {torch.cuda.get_device_name()} has no bfloat16")
        if kernels not in self._models:
            self._models[kernels] = fast_model(self.model, kernels)
        return self._models[kernels]

    # ---- public API ----------------------------------------------------------------------------------
    def estimate(self, frames: Iterable[torch.Tensor], *, qp: int, i_quality: int,
                 intra_period: int | None = GOP_SIZE, scene_cuts: Iterable[int] = (),
                 kernels: str = "exact") -> Iterator[FrameResult]:
        """Code ``frames`` ([3,H,W] or [1,3,H,W] floats in [0,1], read one at a time) with estimated rates.

        ``intra_period`` None: one GOP; ``scene_cuts``: 1-based frame numbers coded as I-frames. ``kernels``
        (``KERNELS``): "exact" (the official numerics), "fast" (other float32 kernels, which round differently
        in the last bits, within the golden tolerances), "bf16" (the inter coder's transforms in bfloat16: a
        larger drift, which ``bench.benchmarks.codec_speed`` prints) or "tf32" (CUDA only: the exact kernels with
        TensorFloat-32 convolutions, PyTorch's default, which every other kernel set turns off)."""
        for results, _ in self._code(frames, [(qp, i_quality)], intra_period, scene_cuts, real=False,
                                     kernels=kernels):
            yield results[0]

    def estimate_points(self, frames: Iterable[torch.Tensor], points, *, intra_period: int | None = GOP_SIZE,
                        scene_cuts: Iterable[int] = (), kernels: str = "exact") -> Iterator[list[FrameResult]]:
        """``estimate`` at several rate points ``points`` [(qp, i_quality), ...] in one pass, coded as one batch
        (a QP and I-frame quality per sample, temporal state per sample): per frame, a FrameResult per point.
        Rates and reconstructions equal coding each point alone within the golden tolerances (tests/test_batch.py;
        the kernels see another batch size, which can move the last bits)."""
        yield from (results for results, _ in self._code(frames, list(points), intra_period, scene_cuts,
                                                          real=False, kernels=kernels))

    def compress(self, frames: Iterable[torch.Tensor], path, *, qp: int, i_quality: int,
                 intra_period: int | None = GOP_SIZE, scene_cuts: Iterable[int] = ()) -> Iterator[FrameResult]:
        """As ``estimate``, plus real entropy coding; the stream file is written to ``path`` once the last
        frame has been yielded (nothing is written if the iteration stops early or fails)."""
        if not Path(path).parent.is_dir():
            raise CodecInputError(f"{path}: the folder for the stream file does not exist")
        records, size = [], None
        for (result,), (record,) in self._code(frames, [(qp, i_quality)], intra_period, scene_cuts, real=True):
            records.append(record)
            size = result.recon.shape[-2:]
            yield result
        header = bs.SequenceHeader(width=size[1], height=size[0], frame_count=len(records),
                                   intra_period=intra_period or 0, qp=qp, i_quality=i_quality,
                                   checkpoint_id=self.checkpoint_id)
        bs.write(path, header, records)

    def decompress(self, path) -> Iterator[FrameResult]:
        """Decode a stream written by ``compress``; yields each frame (``est_bits`` None) as it is decoded."""
        header, records = bs.read(path)
        name = str(path)
        if header.checkpoint_id != self.checkpoint_id:
            raise DecodeError(f"{name}: coded with checkpoint {header.checkpoint_id.hex()}, this model is "
                              f"{self.checkpoint_id.hex()} ({self.checkpoint.path})")
        # I-frames off the intra period are scene cuts; the plan follows from them.
        period = header.intra_period or None
        cuts = [i + 1 for i, r in enumerate(records)
                if r.frame_type == bs.FrameType.I and (i if period is None else i % period) > 0]
        plan = plan_frames(len(records), period, cuts, keep_partial=True)
        height, width = header.height, header.width
        pads = padding(height, width)
        padded = (height + pads[1], width + pads[0])
        ref, state = None, TemporalState()
        for p, record in zip(plan, records):
            with torch.inference_mode(), _tf32(False):
                try:
                    if p.type == "I":
                        ref, symbols = self._decode_intra(record.strings[0], header.i_quality, padded)
                        state = TemporalState()
                    else:
                        if p.reset_ref_feature:
                            state = dataclasses.replace(state, ref_feature=None)
                        source = _StringSource(record.strings, self._tables, self.device)
                        ref, state = self._models["exact"].decode_pframe(ref, state, frame_type_index(p.frame_idx),
                                                                         header.qp, p.predict, source)
                        symbols = source.coded_symbols()
                except ec.EntropyCodingError as e:
                    raise DecodeError(f"{name}: frame {p.number}: cannot decode ({e}): corrupted strings, or "
                                      "a header that does not match them") from e
                recon = unpad(ref, pads)[0]
                quality = header.i_quality if p.type == "I" else header.qp
                crc = _frame_crc(p, quality, (height, width), symbols)
            if crc != record.symbols_crc:
                raise DecodeError(f"{name}: frame {p.number}: symbols CRC {crc:08x} differs from the "
                                  f"encoder's {record.symbols_crc:08x}: decoder out of sync (other "
                                  "device, threads or settings than the encoder, a corrupted string, or a "
                                  "header that does not match the strings)")
            yield FrameResult(p.number, p.type, p.frame_idx, quality, None, tuple(len(s) for s in record.strings),
                              recon)

    # ---- internals -----------------------------------------------------------------------------------
    def _frames(self, frames: Iterable[torch.Tensor]) -> Iterator[torch.Tensor]:
        """Validated [1,3,H,W] float32 contiguous frames on the model's device."""
        size = None
        for n, x in enumerate(frames, start=1):
            where = f"frame {n}"
            if not torch.is_tensor(x):
                raise CodecInputError(f"{where}: expected a torch.Tensor, found {type(x).__name__}")
            if x.dim() == 4 and x.shape[0] == 1:
                x = x[0]
            if x.dim() != 3 or x.shape[0] != 3:
                raise CodecInputError(f"{where}: expected an RGB frame [3,H,W] or [1,3,H,W], found shape "
                                      f"{list(x.shape)}")
            if not x.is_floating_point():
                raise CodecInputError(f"{where}: expected floating-point values in [0, 1], found {x.dtype}")
            if size is None:
                size = tuple(x.shape[-2:])
                if not all(1 <= s <= bs.MAX_DIMENSION for s in size):
                    raise CodecInputError(f"{where}: frame size {size[1]}x{size[0]} outside "
                                          f"1..{bs.MAX_DIMENSION}")
            elif tuple(x.shape[-2:]) != size:
                raise CodecInputError(f"{where}: size {x.shape[-1]}x{x.shape[-2]} differs from the first "
                                      f"frame's {size[1]}x{size[0]}")
            x = x.to(dtype=torch.float32)
            _check_values(where, x)
            yield x.to(device=self.device).contiguous().unsqueeze(0)
        if size is None:
            raise CodecInputError("no frames to code: the input sequence is empty")

    def _code(self, frames, points, intra_period, scene_cuts, real: bool, kernels: str = "exact"):
        """One pass over the sequence for the rate points ``points`` [(qp, i_quality), ...], coded as one batch:
        per frame, ([FrameResult per point], [bitstream FrameRecord per point] or None)."""
        for qp, i_quality in points:
            _check_index("QP", qp)
            _check_index("I-frame quality", i_quality)
        if intra_period is not None and (isinstance(intra_period, bool) or not isinstance(intra_period, int)
                                         or not 1 <= intra_period <= 0xFFFF):
            raise CodecInputError(f"intra period: expected an integer in 1..65535 or None, found {intra_period!r}")
        n = len(points)
        if n == 0 or (real and n > 1):
            raise CodecInputError(f"{n} rate points: expected at least one (one at a time with real bitstreams)")
        # One point codes with the plain int indexes (the release's arithmetic); a batch with a QP per sample.
        qp, i_quality = ((points[0][0], points[0][1]) if n == 1 else
                         ([q for q, _ in points], [i for _, i in points]))
        plan = iter_plan(intra_period, scene_cuts)
        model = self._model(kernels)
        fast = kernels in FAST_KERNELS
        ref, state = None, TemporalState()
        for x, p in zip(self._frames(frames), plan):
            # Inference mode (thread-wide) and the TF32 flags (process-wide) per frame, not across the yield.
            with torch.inference_mode(), _tf32(kernels == "tf32"):
                batch = x.repeat(n, 1, 1, 1) if n > 1 else x
                x_pad, pads = pad_to_multiple(fast_input(batch) if fast else batch)
                if p.type == "I":
                    ref, bits, strings, symbols = self._code_intra(model, x_pad, i_quality, real,
                                                                   f"frame {p.number} (I-frame)")
                    state = TemporalState()
                else:
                    if p.reset_ref_feature:
                        state = dataclasses.replace(state, ref_feature=None)
                    out = model.forward_pframe(ref, x_pad, state, p.frame_idx, qp, p.predict)
                    ref, state = out.recon, out.state
                    bits = [dict(zip(P_COMPONENTS, (_bits(lik[b:b + 1]) for lik in out.likelihoods)))
                            for b in range(n)]
                    _check_finite(f"frame {p.number} (P-frame)", ref, bits)
                    strings, symbols = self._encode_pframe(out.symbols) if real else (None, None)
                    # The frame's by-products (flows, mc frame, mask, latents; 1080p: 0.1 GB) go now, not when
                    # the next P-frame's output replaces them.
                    del out
                recons = unpad(ref, pads)
                qualities = [point[0 if p.type == "P" else 1] for point in points]
                records = [bs.FrameRecord(bs.FrameType[p.type], strings,
                                          _frame_crc(p, qualities[0], x.shape[-2:], symbols))] if real else None
                results = [FrameResult(p.number, p.type, p.frame_idx, qualities[b], bits[b],
                                       None if strings is None else tuple(map(len, strings)),
                                       recons[b].contiguous()) for b in range(n)]
            yield results, records

    def _code_intra(self, model: HyTIP, x_pad: torch.Tensor, quality, real: bool, where: str):
        """(recon at the padded size, est bits, strings, coded symbols) of an I-frame, from one encoder pass."""
        enc = model.if_model.encode(x_pad, quality)
        bits = [{name: _bits(enc["likelihoods"][name][b:b + 1]) for name in I_COMPONENTS}
                for b in range(x_pad.shape[0])]
        _check_finite(where, enc["x_hat"], bits)
        if not real:
            return enc["x_hat"], bits, None, None
        t = self._tables
        coder = ec.StreamEncoder()
        coder.add(enc["z_hat"], ec.channel_indexes(enc["z_hat"].shape), t.intra_z)
        for s, scales in zip(enc["sym_steps"], enc["scale_steps"]):
            coder.add(s, ec.intra_scale_indexes(scales), t.intra_y)
        return enc["x_hat"], bits, (coder.finish(),), [enc["z_hat"], *enc["sym_steps"]]

    def _decode_intra(self, data: bytes, quality: int, padded: tuple[int, int]):
        """(recon at the padded size, decoded symbols) of an I-frame string."""
        t = self._tables
        z_shape = (1, self.model.if_model.net.bit_estimator_z.channels, math.ceil(padded[0] / INTRA_PAD),
                   math.ceil(padded[1] / INTRA_PAD))
        y_per_step = (z_shape[2] * 4) * (z_shape[3] * 4) * 64      # y is 4x z's size; 64 channels per step
        decoder = ec.StreamDecoder(data, max_symbols=math.prod(z_shape) + 4 * y_per_step)
        z = decoder.take(ec.channel_indexes(z_shape), t.intra_z)
        symbols = [z]

        def step(k, scales):
            s = decoder.take(ec.intra_scale_indexes(scales), t.intra_y)
            symbols.append(s)
            return s

        recon = self._models["exact"].if_model.decode(z.to(device=self.device, dtype=torch.float32), step, quality,
                                                      padded[0], padded[1])
        return recon, symbols

    def _encode_pframe(self, s) -> tuple[tuple[bytes, ...], list[torch.Tensor]]:
        """The 7 strings (mv_y, mv_z, y0..y3, z) of a P-frame and their symbols."""
        t = self._tables
        strings = (ec.encode(s.mv_y_symbols, t.mv_gc.build_indexes(s.mv_y_prior.scales), t.mv_y),
                   ec.encode(s.mv_z_hat, ec.channel_indexes(s.mv_z_hat.shape), t.mv_z),
                   *(ec.encode(st.symbols, t.y_gc.build_indexes(st.scales), t.y) for st in s.y_steps),
                   ec.encode(s.z_hat, ec.channel_indexes(s.z_hat.shape), t.z))
        return strings, [s.mv_y_symbols, s.mv_z_hat, *(st.symbols for st in s.y_steps), s.z_hat]


def load(path, device="cpu", *, deterministic: bool = False, threads: int | None = None) -> Codec:
    """Load a released HyTIP checkpoint (``PSNR-RGB.pth.tar`` / ``MS-SSIM-RGB.pth.tar``) onto ``device``.

    ``deterministic``: process-wide settings for bit-exact reruns (``set_deterministic``, ``threads``
    default 1); otherwise ``threads``, if given, sets torch's CPU thread count. Real-mode streams decode
    exactly only on the device and settings they were coded with (on CUDA, use ``deterministic``).
    The file's sha256 is kept in ``codec.checkpoint`` for provenance; its first 8 bytes identify the
    model in the streams it writes. On the CPU, freed memory is kept for reuse (``hytip.allocator``), and the exact
    kernels run the model's blocks in oneDNN's blocked layout (``hytip.blocked``): faster, same values. On CUDA,
    TensorFloat-32 is turned off for the process (float32 is float32, for the model and for metrics computed beside
    it); only ``kernels="tf32"`` turns it on, for its frames.
    """
    if torch.device(device).type == "cpu":
        keep_freed_memory()
    else:
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    if deterministic:
        set_deterministic(1 if threads is None else threads)
    elif threads is not None:
        torch.set_num_threads(threads)
    model = HyTIP()
    info = load_checkpoint(model, Path(path))
    return Codec(model.to(device), info, deterministic)
