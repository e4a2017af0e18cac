"""Bjøntegaard-delta rate and quality, vectorised over many curve pairs.

Conventions (see anchors/README.md and the BD-rate notes of the reference material):
* ``pchip`` (default): piecewise cubic Hermite interpolation with the Fritsch-Carlson/Moler slopes and an analytic
  integral per segment, the convention of the JCT-VC/JVET CTC Excel sheets (JCTVC-E137, JVET-T2010). It gives the
  same numbers as ``bjontegaard.bd_rate(..., method="pchip")``.
* ``cubic``: least-squares cubic polynomial, integrated analytically (VCEG-M33, Bjøntegaard 2001).
* ``akima``: Akima (1970) slopes, as ``scipy.interpolate.Akima1DInterpolator(method="akima")``.

The bjontegaard package computes one pair per call (about 0.3 ms each); a table of thousands of pairs needs the
batched form below, which evaluates every pair of a batch in one numpy pass. The package is the reference in tests.

Rates are integrated in log10; BD-rate is ``10**mean_log_difference - 1`` in percent. Negative BD-rate means the
test needs fewer bits than the anchor. The integration interval is the overlap of the two curves along the
integration variable. Its share of the anchor's range is reported (how much of the anchor's operating range the
comparison covers; a test curve reaching beyond the anchor does not shorten it, the integral only runs over the
common part, and how well that part is sampled shows in the method spread of bench.analysis.intervals); a warning
is issued below ``min_overlap`` and the result is NaN when the curves do not overlap.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.analysis.rd_schema import BD_METRICS, CURVE_KEY, DATASET_MEAN, RISING_ON_LOAD, check_curves_rising
from bench.errors import InputError

METHODS = ("pchip", "cubic", "akima")
MIN_POINTS = 4
DEFAULT_MIN_OVERLAP = 0.75


class OverlapWarning(UserWarning):
    """Anchor and test overlap on less than the required share of the anchor's range. ``kind`` says along what;
    ``pairs`` holds every flagged pair as (name, overlap share), the message only the first five."""

    def __init__(self, message: str, kind: str = "", pairs=()):
        super().__init__(message)
        self.kind, self.pairs = kind, list(pairs)


@dataclass(frozen=True)
class BDResult:
    """BD values of a batch of curve pairs; ``overlap``: the share of the anchor's range the test covers (0: disjoint)."""

    value: np.ndarray
    overlap: np.ndarray


def _as_batch(values, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2:
        raise InputError(f"{name}: expected a 1-D curve or a 2-D batch of curves, found shape {array.shape}")
    return array


def _pchip_slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Shape-preserving PCHIP slopes: weighted harmonic mean inside, one-sided three-point rule at the ends."""
    h = np.diff(x, axis=1)
    m = np.diff(y, axis=1) / h
    d = np.zeros_like(y)
    w1 = 2 * h[:, 1:] + h[:, :-1]
    w2 = h[:, 1:] + 2 * h[:, :-1]
    same_sign = (np.sign(m[:, 1:]) == np.sign(m[:, :-1])) & (m[:, 1:] != 0) & (m[:, :-1] != 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        harmonic = (w1 + w2) / (w1 / m[:, :-1] + w2 / m[:, 1:])
    d[:, 1:-1] = np.where(same_sign, harmonic, 0.0)
    d[:, 0] = _pchip_end_slope(h[:, 0], h[:, 1], m[:, 0], m[:, 1])
    d[:, -1] = _pchip_end_slope(h[:, -1], h[:, -2], m[:, -1], m[:, -2])
    return d


def _pchip_end_slope(h0, h1, m0, m1):
    # Moler, Numerical Computing with MATLAB, pchiptx: a three-point estimate kept monotone.
    d = ((2 * h0 + h1) * m0 - h0 * m1) / (h0 + h1)
    wrong_sign = np.sign(d) != np.sign(m0)
    overshoot = (np.sign(m0) != np.sign(m1)) & (np.abs(d) > 3 * np.abs(m0))
    return np.where(wrong_sign, 0.0, np.where(overshoot, 3 * m0, d))


def _akima_slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Akima slopes with two extrapolated secant slopes at each end (Akima 1970)."""
    m_inner = np.diff(y, axis=1) / np.diff(x, axis=1)
    left1 = 2 * m_inner[:, :1] - m_inner[:, 1:2]
    left2 = 2 * left1 - m_inner[:, :1]
    right1 = 2 * m_inner[:, -1:] - m_inner[:, -2:-1]
    right2 = 2 * right1 - m_inner[:, -1:]
    m = np.concatenate([left2, left1, m_inner, right1, right2], axis=1)
    dm = np.abs(np.diff(m, axis=1))
    f1, f2 = dm[:, 2:], dm[:, :-2]
    f12 = f1 + f2
    # Where both weights vanish the slope is undefined; the mean of the neighbouring secants fills it, with the
    # same relative cut-off as scipy so that results agree with Akima1DInterpolator.
    defined = f12 > 1e-9 * f12.max(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        weighted = m[:, 1:-2] + f2 / f12 * (m[:, 2:-1] - m[:, 1:-2])
    return np.where(defined, weighted, 0.5 * (m[:, 3:] + m[:, :-3]))


def _hermite_mean(x, y, d, lo, hi) -> np.ndarray:
    """Mean over [lo, hi] of the cubic Hermite interpolant through (x, y) with slopes d, integrated exactly."""
    h = np.diff(x, axis=1)
    m = np.diff(y, axis=1) / h
    d0, d1 = d[:, :-1], d[:, 1:]
    c0, c1 = y[:, :-1], d0
    c2 = (3 * m - 2 * d0 - d1) / h
    c3 = (d0 + d1 - 2 * m) / h**2

    def antiderivative(t):
        return t * (c0 + t * (c1 / 2 + t * (c2 / 3 + t * c3 / 4)))

    t_lo = np.clip(lo[:, None] - x[:, :-1], 0.0, h)
    t_hi = np.clip(hi[:, None] - x[:, :-1], 0.0, h)
    return (antiderivative(t_hi) - antiderivative(t_lo)).sum(axis=1) / (hi - lo)


def _cubic_mean(x, y, lo, hi) -> np.ndarray:
    """Mean over [lo, hi] of the least-squares cubic through (x, y), integrated exactly (VCEG-M33)."""
    # Centre and scale x per curve so the normal matrix stays well conditioned; the mean over an interval does
    # not depend on an affine change of variable.
    centre = x.mean(axis=1, keepdims=True)
    scale = x.std(axis=1, keepdims=True)
    u = (x - centre) / scale
    vander = u[:, :, None] ** np.arange(4)
    coef = np.einsum("bkn,bn->bk", np.linalg.pinv(vander), y)
    u_lo = (lo - centre[:, 0]) / scale[:, 0]
    u_hi = (hi - centre[:, 0]) / scale[:, 0]
    powers = np.arange(1, 5)
    integral = (coef * (u_hi[:, None] ** powers - u_lo[:, None] ** powers) / powers).sum(axis=1)
    return integral / (u_hi - u_lo)


def _interval_mean(x, y, lo, hi, method) -> np.ndarray:
    if method == "cubic":
        return _cubic_mean(x, y, lo, hi)
    slopes = _pchip_slopes(x, y) if method == "pchip" else _akima_slopes(x, y)
    return _hermite_mean(x, y, slopes, lo, hi)


def _prepare(x, y, role: str, labels) -> tuple[np.ndarray, np.ndarray]:
    """Sort each curve by x and check it can be integrated: enough points, finite, strictly increasing x."""
    if x.shape != y.shape:
        raise InputError(f"{role}: rate and quality arrays differ in shape ({x.shape} vs {y.shape})")
    if x.shape[1] < MIN_POINTS:
        raise InputError(
            f"{role}{_label(labels, 0)}: BD needs at least {MIN_POINTS} rate points per curve (a cubic through the "
            f"points has 4 coefficients; JVET and VCEG-M33 use 4), found {x.shape[1]}"
        )
    bad = ~(np.isfinite(x).all(axis=1) & np.isfinite(y).all(axis=1))
    if bad.any():
        raise InputError(f"{role}{_label(labels, int(np.argmax(bad)))}: rate or quality is missing or not finite")
    order = np.argsort(x, axis=1, kind="stable")
    x = np.take_along_axis(x, order, axis=1)
    y = np.take_along_axis(y, order, axis=1)
    flat = ~(np.diff(x, axis=1) > 0).all(axis=1)
    if flat.any():
        raise InputError(
            f"{role}{_label(labels, int(np.argmax(flat)))}: two rate points have the same value of the "
            f"integration variable, so the curve is not a function of it"
        )
    return x, y


def _label(labels, index: int) -> str:
    return f" ({labels[index]})" if labels is not None else ""


def _bd_batch(xa, ya, xt, yt, method, min_overlap, labels, kind: str) -> BDResult:
    if method not in METHODS:
        raise InputError(f"unknown BD interpolation method {method!r}; expected one of {', '.join(METHODS)}")
    xa, ya = _prepare(xa, ya, "anchor", labels)
    xt, yt = _prepare(xt, yt, "test", labels)
    if len(xa) != len(xt):
        raise InputError(f"anchor and test batches differ in size ({len(xa)} vs {len(xt)})")
    lo = np.maximum(xa[:, 0], xt[:, 0])
    hi = np.minimum(xa[:, -1], xt[:, -1])
    overlap = np.maximum(hi - lo, 0.0) / (xa[:, -1] - xa[:, 0])
    value = np.full(len(xa), np.nan)
    ok = overlap > 0
    if ok.any():
        value[ok] = _interval_mean(xt[ok], yt[ok], lo[ok], hi[ok], method) - _interval_mean(
            xa[ok], ya[ok], lo[ok], hi[ok], method
        )
    _warn_overlap(overlap, min_overlap, labels, kind)
    return BDResult(value=value, overlap=overlap)


def _warn_overlap(overlap, min_overlap, labels, kind: str) -> None:
    disjoint = np.flatnonzero(overlap <= 0)
    short = np.flatnonzero((overlap > 0) & (overlap < min_overlap))
    for indices, what in ((disjoint, "do not overlap; BD is NaN"), (short, f"cover less than {min_overlap:.0%} of the anchor's range")):
        if len(indices):
            named = ", ".join(
                (labels[i] if labels is not None else f"pair {i}") + f" {overlap[i]:.0%}" for i in indices[:5]
            )
            more = f" and {len(indices) - 5} more" if len(indices) > 5 else ""
            pairs = [(labels[i] if labels is not None else f"pair {i}", float(overlap[i])) for i in indices]
            warnings.warn(OverlapWarning(f"{kind}: {len(indices)} curve pair(s) {what}: {named}{more}", kind, pairs),
                          stacklevel=4)


def _log_rate(rate, role: str) -> np.ndarray:
    rate = _as_batch(rate, f"{role} rate")
    if (rate <= 0).any():
        raise InputError(f"{role}: rates must be positive for the log scale, found {rate[rate <= 0][0]}")
    return np.log10(rate)


def msssim_to_db(msssim) -> np.ndarray:
    """MS-SSIM in decibels, -10 log10(1 - MS-SSIM), the scale on which learned-codec papers plot it."""
    return -10 * np.log10(1 - np.asarray(msssim, dtype=float))


def bd_rate_batch(rate_anchor, quality_anchor, rate_test, quality_test, method: str = "pchip",
                  min_overlap: float = DEFAULT_MIN_OVERLAP, labels=None) -> BDResult:
    """BD-rate in percent for a batch of curve pairs: arrays of shape (pairs, points), one row per curve.

    Anchor and test may have different numbers of points. ``labels`` (one string per pair) name pairs in errors
    and overlap warnings. The overlap is measured along quality.
    """
    ra, rt = _log_rate(rate_anchor, "anchor"), _log_rate(rate_test, "test")
    qa, qt = _as_batch(quality_anchor, "anchor quality"), _as_batch(quality_test, "test quality")
    result = _bd_batch(qa, ra, qt, rt, method, min_overlap, labels, "BD-rate (overlap along quality)")
    return BDResult(value=(10.0**result.value - 1) * 100, overlap=result.overlap)


def bd_quality_batch(rate_anchor, quality_anchor, rate_test, quality_test, method: str = "pchip",
                     min_overlap: float = DEFAULT_MIN_OVERLAP, labels=None) -> BDResult:
    """BD-quality (BD-PSNR in dB, BD-MS-SSIM in the units given) for a batch; the overlap is measured along log rate."""
    ra, rt = _log_rate(rate_anchor, "anchor"), _log_rate(rate_test, "test")
    qa, qt = _as_batch(quality_anchor, "anchor quality"), _as_batch(quality_test, "test quality")
    return _bd_batch(ra, qa, rt, qt, method, min_overlap, labels, "BD-quality (overlap along log rate)")


def bd_rate(rate_anchor, quality_anchor, rate_test, quality_test, method: str = "pchip",
            min_overlap: float = DEFAULT_MIN_OVERLAP) -> float:
    """BD-rate (%) of one test curve against one anchor curve."""
    return float(bd_rate_batch(rate_anchor, quality_anchor, rate_test, quality_test, method, min_overlap).value[0])


def bd_quality(rate_anchor, quality_anchor, rate_test, quality_test, method: str = "pchip",
               min_overlap: float = DEFAULT_MIN_OVERLAP) -> float:
    """BD-quality (BD-PSNR in dB, or BD-MS-SSIM) of one test curve against one anchor curve."""
    return float(bd_quality_batch(rate_anchor, quality_anchor, rate_test, quality_test, method, min_overlap).value[0])


# ---------------------------------------------------------------- tables of RD curves
AVERAGING = {
    "sequences": "mean of per-sequence BD values",
    "curve": "BD of the dataset-mean curve (each rate point's rate and quality averaged over sequences, "
             "weighted by frames)",
}
METHOD_TEXT = {
    "pchip": "pchip: piecewise cubic Hermite, analytic integral (JVET/JCT-VC CTC Excel)",
    "cubic": "cubic: least-squares cubic polynomial, analytic integral (VCEG-M33)",
    "akima": "akima: Akima spline, analytic integral",
}
AVERAGE_ROW = "Average"
# Protocol facts that must agree between a test curve and its anchor curve for the BD value to mean anything.
PROTOCOL_CHECKED = ("frames", "intra_period", "crop", "width", "height", "color_matrix", "color_range", "color_filter")
_PAIR = ["dataset", "sequence", "color_transform"]
_GROUP = ["label", "dataset", "color_transform"]


def codec_label(codec: str, version: str) -> str:
    """The name a codec goes by in tables and in ``--anchor``: codec and version, e.g. VTM-17.0."""
    return codec if version in ("", "unknown") else f"{codec}-{version}"


@dataclass(frozen=True)
class BDTables:
    """``sequences``: one row per test codec, dataset, sequence (or "avg"), colour transform and metric.
    ``datasets``: the per-dataset values and an ``Average`` row per codec, in the BD table schema of bench.analysis.rd_schema.
    ``notes``: what was skipped and why."""

    sequences: pd.DataFrame
    datasets: pd.DataFrame
    notes: list


def bd_tables(rd: pd.DataFrame, anchor: str, metrics=("psnr_rgb", "msssim_rgb"), *, method: str = "pchip",
              averaging: str = "sequences", msssim_db: bool = False, min_overlap: float = DEFAULT_MIN_OVERLAP,
              allow_protocol_mismatch: bool = False, pair_columns=None) -> BDTables:
    """BD-rate and BD-quality of every codec in ``rd`` (RD points in the anchor schema, as loaded by
    bench.analysis.rd_schema) against the codec labelled ``anchor``, for each metric and colour transform.

    Test and anchor curves are paired by dataset, sequence and colour transform; a dataset's sequences must be the
    same for both, and so must the protocol (PROTOCOL_CHECKED) unless ``allow_protocol_mismatch``. ``averaging``
    picks the per-dataset convention (see AVERAGING); the Average row is the mean of the per-dataset values.
    ``pair_columns(metric, rate_anchor, quality_anchor, rate_test, quality_test, bd_rate)``, given, adds columns to
    the per-sequence table: it gets each batch of curve pairs as BD-rate integrates them (quality in dB where asked)
    and returns {column: one value per pair} (bench.analysis.intervals uses it).
    """
    if averaging not in AVERAGING:
        raise InputError(f"unknown averaging {averaging!r}; expected one of {', '.join(AVERAGING)}")
    if method not in METHODS:
        raise InputError(f"unknown BD interpolation method {method!r}; expected one of {', '.join(METHODS)}")
    rd = rd.assign(label=[codec_label(c, v) for c, v in zip(rd["codec"], rd["codec_version"])])
    is_anchor = ((rd["label"] == anchor) | (rd["codec"] == anchor)).to_numpy()
    if not is_anchor.any():
        raise InputError(f"anchor {anchor!r} is in none of the inputs; codecs found: {', '.join(sorted(set(rd['label'])))}")
    anchor_label = rd.loc[is_anchor, "label"].iloc[0]
    _check_unambiguous(rd)
    if is_anchor.all():
        raise InputError(f"the inputs hold only the anchor {anchor_label}; give the results to compare with it too")
    notes, per_sequence = [], []
    for metric in metrics:
        if metric not in BD_METRICS:
            raise InputError(f"unknown metric {metric!r}; BD is computed on {', '.join(BD_METRICS)}")
        has = rd[metric].notna().to_numpy()
        if metric not in RISING_ON_LOAD:   # checked on loading for the others
            check_curves_rising(rd[has], metrics=(metric,))
        if not (has & is_anchor).any():
            raise InputError(f"anchor {anchor_label} has no {metric} values; pick another --metric")
        lacking = sorted(set(rd.loc[~is_anchor, "label"]) - set(rd.loc[has & ~is_anchor, "label"]))
        if lacking:
            notes.append(f"{metric}: no values for {', '.join(lacking)}")
        test = _paired_tests(rd[has & is_anchor], rd[has & ~is_anchor], anchor_label, allow_protocol_mismatch, notes)
        if len(test):
            per_sequence.append(_bd_pairs(rd[has & is_anchor], test, metric, method, averaging, msssim_db, min_overlap,
                                          pair_columns))
    if not per_sequence:
        raise InputError(f"nothing to compare with anchor {anchor_label}: " + "; ".join(notes))
    sequences = pd.concat(per_sequence, ignore_index=True)
    sequences.insert(1, "anchor", anchor_label)
    return BDTables(sequences, _dataset_table(sequences, rd, method, averaging), notes)


def _check_unambiguous(rd: pd.DataFrame) -> None:
    curves = rd.drop_duplicates(subset=["label"] + list(CURVE_KEY))
    clash = curves.duplicated(subset=["label"] + _PAIR, keep=False)
    if clash.any():
        first = curves[clash].iloc[0]
        same = curves[clash & (curves[["label"] + _PAIR] == first[["label"] + _PAIR]).all(axis=1)]
        places = "; ".join(f"{f} {w}" for f, w in zip(same["file"], same["where"]))
        raise InputError(f"{places}: {first['label']} has more than one curve for {first['dataset']}/"
                         f"{first['sequence']} {first['color_transform']} (different configuration or protocol); "
                         f"keep one per comparison")


def _paired_tests(anchor: pd.DataFrame, test: pd.DataFrame, anchor_label, allow_mismatch, notes) -> pd.DataFrame:
    """The test rows whose dataset and colour transform the anchor covers, after checking that each such test
    covers exactly the anchor's sequences under the same protocol."""
    a_curves = anchor.drop_duplicates(_PAIR)
    t_curves = test.drop_duplicates(["label"] + _PAIR)
    covered = t_curves.merge(a_curves[["dataset", "color_transform"]].drop_duplicates(), how="left",
                             on=["dataset", "color_transform"], indicator=True)["_merge"].eq("both").to_numpy()
    for label, dataset, transform in t_curves.loc[~covered, _GROUP].drop_duplicates().itertuples(index=False):
        notes.append(f"{label}: anchor {anchor_label} has no {dataset} {transform} curves")
    t_curves = t_curves[covered]
    merged = t_curves.merge(a_curves, how="left", on=_PAIR, suffixes=("", "_anchor"), indicator=True)
    extra = merged["_merge"] == "left_only"
    matched = merged[~extra].groupby(_GROUP).size()
    wanted = a_curves.groupby(["dataset", "color_transform"]).size()
    short = [key for key, n in matched.items() if n != wanted[key[1:]]]
    if extra.any() or short or len(matched) < len(t_curves[_GROUP].drop_duplicates()):
        row = merged[extra].iloc[0] if extra.any() else None
        if row is not None:
            raise InputError(f"{row['file']}: {row['where']}: {row['label']} has sequence {row['sequence']!r} "
                             f"of {row['dataset']} {row['color_transform']}, which the anchor {anchor_label} lacks")
        label, dataset, transform = short[0]
        have = set(t_curves.loc[(t_curves["label"] == label) & (t_curves["dataset"] == dataset)
                                & (t_curves["color_transform"] == transform), "sequence"])
        lack = sorted(set(a_curves.loc[(a_curves["dataset"] == dataset)
                                       & (a_curves["color_transform"] == transform), "sequence"]) - have)
        raise InputError(f"{label} on {dataset} {transform} lacks the anchor's sequence(s) {', '.join(lack)}; a "
                         f"dataset BD value needs the same sequences for test and anchor")
    unequal = {}
    for column in PROTOCOL_CHECKED:
        ours, theirs = merged[column], merged[column + "_anchor"]
        same = (ours.isna() & theirs.isna()) | (ours == theirs).fillna(False)
        unequal[column] = ~same.to_numpy(dtype=bool)
    differs = np.logical_or.reduce(list(unequal.values()))
    if differs.any():
        i = int(np.argmax(differs))
        row = merged.iloc[i]
        detail = ", ".join(f"{c} {row[c]} vs {row[c + '_anchor']}" for c in PROTOCOL_CHECKED if unequal[c][i])
        message = (f"{row['label']} and anchor {anchor_label} differ in protocol on {row['dataset']}/"
                   f"{row['sequence']} {row['color_transform']} ({int(differs.sum())} curve(s)): {detail}")
        if not allow_mismatch:
            raise InputError(f"{row['file']}: {row['where']}: {message} (pass --allow-protocol-mismatch to compare "
                             f"anyway; the values are then not like-for-like)")
        notes.append("protocol mismatch allowed: " + message)
    keep = test.set_index(_GROUP).index.isin(t_curves.set_index(_GROUP).index)
    return test[keep]


def dataset_mean_curves(rows: pd.DataFrame, rate: str, metric: str) -> pd.DataFrame:
    """Average each rate point over the sequences of a dataset, weighted by frames (equal weights if unknown)."""
    n_seq = rows.groupby(_GROUP)["sequence"].transform("nunique")
    per_point = rows.groupby(_GROUP + ["rate_point"])["sequence"].transform("nunique")
    uneven = (per_point != n_seq).to_numpy()
    if uneven.any():
        row = rows[uneven].iloc[0]
        raise InputError(f"{row['file']}: {row['where']}: rate point {row['rate_point']!r} of {row['label']} is not "
                         f"present in every {row['dataset']} sequence, so a dataset-mean curve cannot be formed")
    mixed = ((rows["sequence"] == DATASET_MEAN) & (n_seq > 1)).to_numpy()
    if mixed.any():
        row = rows[mixed].iloc[0]
        raise InputError(f"{row['file']}: {row['where']}: {row['label']} has both a published dataset mean and "
                         f"per-sequence curves for {row['dataset']}")
    frames = rows["frames"].astype(float)
    all_known = frames.notna().groupby([rows[k] for k in _GROUP]).transform("all")
    weight = frames.where(all_known, 1.0)
    weighted = rows.assign(w=weight, wr=weight * rows[rate], wq=weight * rows[metric])
    sums = weighted.groupby(_GROUP + ["rate_point"], as_index=False).agg(
        w=("w", "sum"), wr=("wr", "sum"), wq=("wq", "sum"), file=("file", "first"), where=("where", "first"))
    return sums.assign(sequence=DATASET_MEAN, **{rate: sums["wr"] / sums["w"], metric: sums["wq"] / sums["w"]})


def _curve_arrays(rows: pd.DataFrame, rate: str, metric: str, keys: list):
    """Split rows into curves: (key tuple, rates, qualities, first row's place) per curve, sorted by key."""
    ordered = rows.sort_values(keys + [rate], kind="stable")
    codes = ordered.groupby(keys, sort=False).ngroup().to_numpy()
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    bounds = np.r_[starts, len(codes)]
    key_values = ordered[keys].to_numpy()
    r, q = ordered[rate].to_numpy(float), ordered[metric].to_numpy(float)
    places = (ordered["file"] + " " + ordered["where"]).to_numpy()
    return [(tuple(key_values[s]), r[s:e], q[s:e], places[s]) for s, e in zip(bounds[:-1], bounds[1:])]


def _bd_pairs(anchor, test, metric, method, averaging, msssim_db, min_overlap, pair_columns) -> pd.DataFrame:
    """BD-rate and BD-quality of every test curve against the anchor curve of its dataset, sequence and transform.

    The rate is bpp where anchor and test both have it (any unit gives the same per-sequence value, not the same
    dataset-mean curve), else kbps.
    """
    with_bpp = test["bpp"].notna().groupby(test["label"]).transform("all").to_numpy() & bool(anchor["bpp"].notna().all())
    frames = []
    for rate, rows in (("bpp", test[with_bpp]), ("kbps", test[~with_bpp])):
        if rows.empty:
            continue
        for role, side in (("anchor", anchor), ("test", rows)):
            if side[rate].isna().any():
                row = side[side[rate].isna()].iloc[0]
                raise InputError(f"{row['file']}: {row['where']}: {role} point without {rate}, the only rate unit "
                                 f"that {', '.join(sorted(set(rows['label'])))} and the anchor could share")
        frames.append(_bd_pairs_in(anchor, rows, rate, metric, method, averaging, msssim_db, min_overlap,
                                   pair_columns))
    return pd.concat(frames, ignore_index=True)


def _bd_pairs_in(anchor, test, rate, metric, method, averaging, msssim_db, min_overlap, pair_columns) -> pd.DataFrame:
    if averaging == "curve":
        anchor, test = dataset_mean_curves(anchor, rate, metric), dataset_mean_curves(test, rate, metric)
    a_curves = {key: (r, q, place) for key, r, q, place in _curve_arrays(anchor, rate, metric, _PAIR)}
    t_curves = _curve_arrays(test, rate, metric, ["label"] + _PAIR)
    by_shape: dict = {}
    for i, (key, r, _, _) in enumerate(t_curves):
        by_shape.setdefault((len(a_curves[key[1:]][0]), len(r)), []).append(i)
    out = np.full((3, len(t_curves)), np.nan)
    extra: dict = {}
    db = msssim_db and metric.startswith("msssim")
    for indices in by_shape.values():
        tests = [t_curves[i] for i in indices]
        anchors = [a_curves[t[0][1:]] for t in tests]
        ra, qa = np.stack([a[0] for a in anchors]), np.stack([a[1] for a in anchors])
        rt, qt = np.stack([t[1] for t in tests]), np.stack([t[2] for t in tests])
        if db:
            qa, qt = msssim_to_db(qa), msssim_to_db(qt)
        names = [f"{t[0][0]} {t[0][1]}/{t[0][2]} {t[0][3]} {metric} (test {t[3]}, anchor {a[2]})"
                 for t, a in zip(tests, anchors)]
        result = bd_rate_batch(ra, qa, rt, qt, method, min_overlap, names)
        out[0, indices], out[2, indices] = result.value, result.overlap
        out[1, indices] = bd_quality_batch(ra, qa, rt, qt, method, min_overlap, names).value
        if pair_columns is not None:
            for column, values in pair_columns(metric, ra, qa, rt, qt, result.value).items():
                extra.setdefault(column, np.full(len(t_curves), np.nan))[indices] = values
    keys = [t[0] for t in t_curves]
    return pd.DataFrame({
        "codec": [k[0] for k in keys], "dataset": [k[1] for k in keys], "sequence": [k[2] for k in keys],
        "color_transform": [k[3] for k in keys], "metric": metric + ("_db" if db else ""), "rate": rate,
        "bd_rate_pct": out[0], "bd_quality": out[1], "overlap": out[2], **extra,
    })


def _protocol_text(rows: pd.DataFrame) -> str:
    def values(column):
        found = sorted({str(v) for v in rows[column].dropna().unique()})
        return "/".join(found) if found else "unknown"

    return (f"{values('frames')} frames, intra period {values('intra_period')}, crop {values('crop')}, "
            f"{values('width')}x{values('height')}, colour matrix {values('color_matrix')} "
            f"range {values('color_range')} chroma filter {values('color_filter')}")


def _dataset_table(sequences: pd.DataFrame, rd: pd.DataFrame, method: str, averaging: str) -> pd.DataFrame:
    keys = ["codec", "anchor", "dataset", "color_transform", "metric"]
    grouped = sequences.assign(nan=sequences["bd_rate_pct"].isna()).groupby(keys, sort=False)
    table = grouped[["bd_rate_pct", "bd_quality"]].mean().reset_index()
    # mean() skips NaN, but a dataset with an undefined sequence has no defined mean.
    table.loc[grouped["nan"].any().to_numpy(), ["bd_rate_pct", "bd_quality"]] = np.nan
    n_sequences = rd.groupby(_GROUP)["sequence"].nunique()
    table["sequences"] = n_sequences.reindex(pd.MultiIndex.from_frame(
        table[["codec", "dataset", "color_transform"]].set_axis(_GROUP, axis=1))).to_numpy()
    table["averaging"] = AVERAGING[averaging]
    average = table.groupby(["codec", "anchor", "color_transform", "metric"], sort=False).agg(
        bd_rate_pct=("bd_rate_pct", lambda v: v.mean(skipna=False)),
        bd_quality=("bd_quality", lambda v: v.mean(skipna=False)),
        sequences=("sequences", "sum"), datasets=("dataset", "nunique")).reset_index()
    average["dataset"] = AVERAGE_ROW
    average["averaging"] = "mean over " + average["datasets"].astype(str) + " datasets of the " + AVERAGING[averaging]
    table = pd.concat([table, average.drop(columns="datasets")], ignore_index=True)
    table["method"] = METHOD_TEXT[method]
    protocol, source = {}, {}
    distinct = rd.drop_duplicates(["label", "color_transform", "file"] + list(PROTOCOL_CHECKED))
    for (label, transform), rows in distinct.groupby(["label", "color_transform"]):
        protocol[label, transform] = _protocol_text(rows)
        source[label, transform] = " ".join(sorted(set(rows["file"])))
    table["protocol"] = [protocol[c, t] for c, t in zip(table["codec"], table["color_transform"])]
    table["source"] = [f"test {source[c, t]}; anchor {source[a, t]}" for c, a, t in
                       zip(table["codec"], table["anchor"], table["color_transform"])]
    table["release"] = "computed by hytip-bench"
    table["sequences"] = table["sequences"].astype("Int64")
    # Metrics in the order asked for, datasets in input order, Average last.
    order = {"metric": {m: i for i, m in enumerate(dict.fromkeys(sequences["metric"]))},
             "dataset": {d: i for i, d in enumerate(dict.fromkeys(list(rd["dataset"]) + [AVERAGE_ROW]))}}
    return table.sort_values(["metric", "color_transform", "codec", "dataset"], kind="stable",
                             key=lambda c: c.map(order[c.name]) if c.name in order else c).reset_index(drop=True)
