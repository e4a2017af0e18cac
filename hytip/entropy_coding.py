"""Real entropy coding of HyTIP latents with CompressAI's rANS coder (``compressai.ans``: Rans64, 16-bit
probabilities, 4-bit bypass for values outside a table's support).

Every distribution the release codes is turned into a quantized CDF table (``CdfTable``), built with the
release's probabilities:

* P-frame mv_y and the four checkerboard y steps: the rows of an updated CompressAI ``GaussianConditional``
  (``CdfTable.from_gaussian_conditional``), indexed by ``gc.build_indexes(scales)``. These strings are
  byte-identical to the release's.
* Every z (intra, P-frame mv_z and z): the per-channel BitEstimator pmf (``factorized_table``), indexed by
  channel (``channel_indexes``). The release codes P-frame z with a byte-wise rANS (2-bit bypass); we code
  the same probabilities with Rans64, which costs a few bytes more per string.
* Intra y: the DCVC-DC 256-scale normal table (``intra_gaussian_table``) indexed by ``intra_scale_indexes``.
  The release writes z and the four intra y steps into one rANS stream; ``StreamEncoder`` /
  ``StreamDecoder`` do the same, so that string is the release's minus its 1-byte stream flag.

Symbols are integers (round(y − μ) for Gaussian latents, round(z) for z). The coder side is integer
arithmetic only, hence deterministic; encoder and decoder agree whenever their CDF indexes agree.
``symbols_crc32`` fingerprints a frame's symbols: stored by the encoder, it lets the decoder detect that it
lost sync (a σ that rounds to another CDF index on the decoder side yields other symbols, not an error).
"""
from __future__ import annotations

import functools
import math
import zlib
from dataclasses import dataclass

import numpy as np
import torch
from compressai.ans import BufferedRansEncoder, RansDecoder
from compressai.entropy_models.entropy_models import pmf_to_quantized_cdf

from .errors import HytipError

PRECISION = 16
# |symbol| bound: keeps the bypass code of an out-of-support value inside the coder's 32-bit arithmetic.
MAX_ABS_SYMBOL = 1 << 24

# DCVC-DC intra Gaussian table (the release's GaussianEncoder('gaussian')).
INTRA_SCALE_MIN = 0.11
INTRA_SCALE_MAX = 64.0
INTRA_SCALE_LEVELS = 256
_INTRA_LOG_MIN = math.log(INTRA_SCALE_MIN)
_INTRA_LOG_STEP = (math.log(INTRA_SCALE_MAX) - math.log(INTRA_SCALE_MIN)) / (INTRA_SCALE_LEVELS - 1)
_INTRA_SIGMA_FLOOR = 1e-5
_INTRA_SUPPORT_MAX = 50
_INTRA_CDF_HIGH = 0.9999


class EntropyCodingError(HytipError):
    """Inputs the coder cannot code or a string it cannot decode."""


@dataclass(frozen=True, eq=False)
class CdfTable:
    """Quantized CDFs in CompressAI's layout; treat as read-only.

    Row i codes ``symbol − offsets[i]`` in ``0 .. lengths[i] − 2``; the last entry of that range is the
    escape to bypass coding. ``cdfs[i][:lengths[i]]`` rises strictly from 0 to 2**16.
    """

    cdfs: list[list[int]]
    lengths: list[int]
    offsets: list[int]

    def __post_init__(self):
        # CompressAI's C++ coder checks nothing in release builds: a bad table would read out of bounds.
        n = len(self.cdfs)
        if n == 0 or len(self.lengths) != n or len(self.offsets) != n:
            raise EntropyCodingError(f"CDF table: {n} CDFs, {len(self.lengths)} lengths, "
                                     f"{len(self.offsets)} offsets; expected equal non-zero counts")
        for i, (cdf, length) in enumerate(zip(self.cdfs, self.lengths)):
            head = np.asarray(cdf[:length], dtype=np.int64)
            if length < 3 or len(cdf) < length or head[0] != 0 or head[-1] != 1 << PRECISION \
                    or np.any(np.diff(head) <= 0):
                raise EntropyCodingError(f"CDF table row {i}: not a strictly rising 0..2^{PRECISION} CDF "
                                         f"of length {length}")

    def __len__(self) -> int:
        return len(self.cdfs)

    @classmethod
    def from_pmfs(cls, pmf: torch.Tensor, tail_mass: torch.Tensor, pmf_length: torch.Tensor,
                  offset: torch.Tensor) -> CdfTable:
        """Row i from ``pmf[i, :pmf_length[i]]`` plus the tail mass, quantized to 16 bits by CompressAI's
        ``pmf_to_quantized_cdf`` (the release's own build does the same arithmetic)."""
        lengths = [int(n) for n in pmf_length.reshape(-1)]
        pmf = pmf.detach().cpu().reshape(len(lengths), -1)
        tail_mass = tail_mass.detach().cpu().reshape(len(lengths), 1)
        cdfs = [pmf_to_quantized_cdf(torch.cat((pmf[i, :n], tail_mass[i])), PRECISION).tolist()
                for i, n in enumerate(lengths)]
        return cls(cdfs, [n + 2 for n in lengths], [int(o) for o in offset.reshape(-1)])

    @classmethod
    def from_gaussian_conditional(cls, gc) -> CdfTable:
        """The tables of a CompressAI ``GaussianConditional`` after ``update()``."""
        if gc._quantized_cdf.numel() == 0:
            raise EntropyCodingError("GaussianConditional has no CDF tables: call update() first")
        lengths = gc._cdf_length.reshape(-1).tolist()
        return cls([row[:n] for row, n in zip(gc._quantized_cdf.tolist(), lengths)], lengths,
                   gc._offset.reshape(-1).tolist())


def factorized_table(bit_estimator) -> CdfTable:
    """Per-channel tables of a factorized z model (``hytip.entropy_models.BitEstimator``)."""
    return CdfTable.from_pmfs(**bit_estimator.pmf_table())


@functools.lru_cache(maxsize=1)
def intra_gaussian_table() -> CdfTable:
    """DCVC-DC intra table: N(0, σ) for 256 σ = exp(linspace(ln 0.11, ln 64, 256)), float32.

    Support ±c with c the smallest i in 2..50 with Φ(i/σ) > 0.9999 (50 if none); pmf Φ((x+½)/σ) −
    Φ((x−½)/σ); tail 2·Φ((−c−½)/σ). Evaluated with torch's Normal in float32 as the release does.
    """
    scales = torch.exp(torch.linspace(_INTRA_LOG_MIN, math.log(INTRA_SCALE_MAX), INTRA_SCALE_LEVELS))
    normal = torch.distributions.Normal(torch.zeros_like(scales), scales)
    center = torch.full_like(scales, _INTRA_SUPPORT_MAX)
    for i in range(_INTRA_SUPPORT_MAX, 1, -1):
        inside = normal.cdf(torch.full_like(scales, i)) > _INTRA_CDF_HIGH
        center = torch.where(inside, torch.full_like(scales, i), center)
    center = center.int()
    pmf_length = 2 * center + 1
    samples = (torch.arange(int(pmf_length.max())) - center[:, None]).float()
    normal = torch.distributions.Normal(torch.zeros_like(samples), torch.zeros_like(samples) + scales[:, None])
    lower = normal.cdf(samples - 0.5)
    pmf = normal.cdf(samples + 0.5) - lower
    return CdfTable.from_pmfs(pmf, 2 * lower[:, :1], pmf_length, -center)


def intra_scale_indexes(scales: torch.Tensor) -> torch.Tensor:
    """Intra table index: trunc((ln max(σ, 1e-5) − ln 0.11) / Δ) clamped to 0..255 (σ below 0.11 uses row 0).

    Same float32 expression as the release, so encoder and decoder get the release's indexes."""
    scales = torch.maximum(scales, torch.zeros_like(scales) + _INTRA_SIGMA_FLOOR)
    indexes = (torch.log(scales) - _INTRA_LOG_MIN) / _INTRA_LOG_STEP
    return indexes.clamp_(0, INTRA_SCALE_LEVELS - 1).int()


def channel_indexes(shape) -> torch.Tensor:
    """Index = channel, for a factorized table and a latent of ``shape`` [N, C, H, W]."""
    n, c, h, w = shape
    return torch.arange(c, dtype=torch.int32).view(1, c, 1, 1).expand(n, c, h, w)


def _flat_ints(x, what: str) -> np.ndarray:
    a = x.detach().cpu().numpy() if torch.is_tensor(x) else np.asarray(x)
    a = a.reshape(-1)
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)) or np.any(np.round(a) != a):
            raise EntropyCodingError(f"{what} must hold integers; found non-integral or non-finite values")
    elif a.dtype.kind not in "iu":
        raise EntropyCodingError(f"{what} must be an integer array, found dtype {a.dtype}")
    return a.astype(np.int64)


def _shape(x) -> tuple:
    return tuple(x.shape) if torch.is_tensor(x) else np.shape(x)


def _checked_indexes(indexes, table: CdfTable) -> np.ndarray:
    idx = _flat_ints(indexes, "indexes")
    if idx.size and (idx.min() < 0 or idx.max() >= len(table)):
        raise EntropyCodingError(f"CDF indexes span {idx.min()}..{idx.max()}; the table has rows 0..{len(table) - 1}")
    return idx


def symbols_crc32(tensors) -> int:
    """CRC32 of a sequence of symbol tensors (as little-endian int32, in order); float or int input alike."""
    crc = 0
    for t in tensors:
        crc = zlib.crc32(_flat_ints(t, "symbols").astype("<i4").tobytes(), crc)
    return crc


class StreamEncoder:
    """Several symbol tensors, each with its own table, into one rANS string (decoded in the same order)."""

    def __init__(self):
        self._coder = BufferedRansEncoder()

    def add(self, symbols, indexes, table: CdfTable) -> None:
        sym = _flat_ints(symbols, "symbols")
        idx = _checked_indexes(indexes, table)
        if sym.shape != idx.shape:
            raise EntropyCodingError(f"{sym.size} symbols but {idx.size} indexes")
        if sym.size and np.abs(sym).max() > MAX_ABS_SYMBOL:
            raise EntropyCodingError(f"symbol magnitude {np.abs(sym).max()} exceeds {MAX_ABS_SYMBOL}")
        self._coder.encode_with_indexes(sym.tolist(), idx.tolist(), table.cdfs, table.lengths, table.offsets)

    def finish(self) -> bytes:
        return self._coder.flush()


class StreamDecoder:
    """Reads back a ``StreamEncoder`` string: one ``take`` per ``add``, same indexes and tables.

    ``max_symbols`` (the total the caller will take) sizes a zero pad after the string: a decoder that lost
    sync can read past the data (at most a word per decoded symbol or bypass chunk), and must then read
    zeros, not foreign memory.
    """

    def __init__(self, data: bytes, max_symbols: int):
        # Rans64 writes 32-bit words and flushes 2 of them.
        if len(data) < 8 or len(data) % 4:
            raise EntropyCodingError(f"rANS string of {len(data)} bytes: expected a multiple of 4, at least 8")
        self._coder = RansDecoder()
        self._coder.set_stream(bytes(data) + bytes(8 * max_symbols + 64))
        self._left = max_symbols

    def take(self, indexes, table: CdfTable) -> torch.Tensor:
        """Symbols (int32, shaped like ``indexes``)."""
        idx = _checked_indexes(indexes, table)
        if idx.size > self._left:
            raise EntropyCodingError(f"taking {idx.size} symbols, but the decoder was opened for "
                                     f"{self._left} more")
        self._left -= idx.size
        sym = self._coder.decode_stream(idx.tolist(), table.cdfs, table.lengths, table.offsets)
        return torch.tensor(sym, dtype=torch.int32).reshape(_shape(indexes))


def encode(symbols, indexes, table: CdfTable) -> bytes:
    """One symbol tensor into one string."""
    enc = StreamEncoder()
    enc.add(symbols, indexes, table)
    return enc.finish()


def decode(data: bytes, indexes, table: CdfTable) -> torch.Tensor:
    """Inverse of ``encode``: int32 symbols shaped like ``indexes``."""
    return StreamDecoder(data, math.prod(_shape(indexes))).take(indexes, table)
