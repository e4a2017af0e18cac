"""How a sweep's rate points are chosen (`rate_points:` in a config, `--rate-points` / `--match-anchor` on `run`).

    rate_points: [{i_quality: 0, qp: 0}, ...]   # fixed (the default): these HyTIP points, the encoders' qps:
    rate_points: match                          # matched to the anchor's range (bench.sweep.rate_match), or
    rate_points: {mode: match, anchor: vvenc, per: sequence, points: 4, codecs: [x264, x265]}
    rate_points: dense                          # 16 points evenly spaced over each codec's protocol span, or
    rate_points: {mode: dense, points: 24}

Dense curves exist to measure the 4-point protocol's interpolation error (bench.analysis.dense_check): the dense
set always includes the protocol's own points (HyTIP's default indexes, an encoder's qps:), so the 4-point curve is
a subset of the same records, marked `dense, protocol` in the results' rate_selection column.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.codecs.base import RateAxis, RatePoint
from bench.errors import InputError

MODES = ("fixed", "match", "dense")
PER = ("sequence", "dataset")
DENSE_POINTS = 16
MATCH_POINTS = 4
MATCH_METRICS = ("psnr_rgb", "msssim_rgb")   # measured for every codec; the report's BD axes
KEYS = {"mode", "anchor", "per", "points", "metrics", "codecs"}


@dataclass(frozen=True)
class RateSelection:
    mode: str = "fixed"
    points: int = MATCH_POINTS
    anchor: str | None = None                 # match: the anchor codec of the sweep (default: vtm, else vvenc)
    per: str = "sequence"                     # match: one choice per sequence, or per dataset (its mean)
    metrics: tuple[str, ...] = MATCH_METRICS  # match: quality ranges to cover besides the rate range
    codecs: tuple[str, ...] = ()              # match: the codecs matched (empty: all but the anchor)
    fixed: tuple[RatePoint, ...] = ()         # fixed: HyTIP's points (empty: the default ones)

    def matched_text(self, anchor: str) -> str:
        """What the results' rate_selection column says for a point chosen by matching."""
        return f"matched to {anchor} per {self.per} (probe: first GOP)"

    def dense_values(self, axis: RateAxis, protocol: list[int]) -> list[int]:
        """At least `points` values evenly spaced over the protocol's span, the protocol's own among them."""
        low, high = min(protocol), max(protocol)
        spaced = np.rint(np.linspace(low, high, self.points)).astype(int).tolist()
        return sorted({v for v in spaced + list(protocol) if axis.contains(v)})


def parse_rate_points(value, where: str = "rate_points") -> RateSelection:
    """A config's rate_points value (None, a list of HyTIP points, match, dense or a mapping with mode:)."""
    if value is None:
        return RateSelection()
    if isinstance(value, list):
        return RateSelection(fixed=tuple(_fixed_point(p, where) for p in value))
    if isinstance(value, str):
        value = {"mode": value}
    if not isinstance(value, dict):
        raise InputError(f"{where}: expected a list of HyTIP points, match, dense or a mapping, found {value!r}")
    unknown = sorted(set(value) - KEYS)
    if unknown:
        raise InputError(f"{where}: unknown key(s) {', '.join(unknown)}; expected {', '.join(sorted(KEYS))}")
    mode = value.get("mode")
    if mode not in ("match", "dense"):
        raise InputError(f"{where}: mode {mode!r}: expected match or dense (a list of points for fixed ones)")
    points = value.get("points", DENSE_POINTS if mode == "dense" else MATCH_POINTS)
    if isinstance(points, bool) or not isinstance(points, int) or points < (5 if mode == "dense" else 4):
        raise InputError(f"{where}: points {points!r}: expected an integer of at least "
                         f"{5 if mode == 'dense' else 4} (a BD curve needs 4)")
    if mode == "dense":
        extra = sorted(set(value) - {"mode", "points"})
        if extra:
            raise InputError(f"{where}: {', '.join(extra)} apply to mode match only")
        return RateSelection("dense", points)
    per = value.get("per", "sequence")
    if per not in PER:
        raise InputError(f"{where}: per {per!r}: expected one of {', '.join(PER)}")
    metrics = tuple(value.get("metrics", MATCH_METRICS))
    return RateSelection("match", points, value.get("anchor"), per, metrics, tuple(value.get("codecs", ())))


def _fixed_point(point, where: str) -> RatePoint:
    if not isinstance(point, dict) or "qp" not in point:
        raise InputError(f"{where}: a HyTIP point is a mapping {{i_quality: I, qp: Q}}, found {point!r}")
    qp, i_quality = point["qp"], point.get("i_quality", point["qp"])
    for name, v in (("qp", qp), ("i_quality", i_quality)):
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 63:
            raise InputError(f"{where}: HyTIP {name} {v!r} is outside 0..63 (the model's 64 quality levels)")
    return RatePoint(qp, i_quality)
