"""Leaving rate points out of a comparison, as DCVC's compare_bd_rate.py --rate_exclude does: a point that falls
outside the anchor's range, or that a codec cannot reach, can be dropped, and the report and tables say so."""
from __future__ import annotations

import pandas as pd

from bench.analysis.bdrate import codec_label
from bench.errors import InputError


def exclude_rate_points(rd: pd.DataFrame, specs) -> tuple[pd.DataFrame, str]:
    """``rd`` without the rate points named by ``specs``: ``POINT`` (every codec's point of that name, e.g. qp22)
    or ``CODEC:POINT`` (one codec's, CODEC its label such as HyTIP-PSNR-RGB or its bare name). Returns the rest and
    one sentence saying what was left out; a spec that matches nothing is an error naming what there is."""
    if not specs:
        return rd, ""
    labels = pd.Series([codec_label(c, v) for c, v in zip(rd["codec"], rd["codec_version"])], index=rd.index)
    drop = pd.Series(False, index=rd.index)
    said = []
    for spec in specs:
        codec, _, point = spec.rpartition(":")
        hit = rd["rate_point"].astype(str).eq(point)
        if codec:
            hit &= labels.eq(codec) | rd["codec"].eq(codec)
        if not hit.any():
            have = sorted(set(rd["rate_point"].astype(str)))
            where = f"of {codec}" if codec else "of any codec"
            raise InputError(f"--exclude-rate-points {spec}: no rate point {point!r} {where}; rate points: "
                             f"{', '.join(have[:12])}{' ...' if len(have) > 12 else ''}")
        drop |= hit
        said.append(f"{point} of {codec}" if codec else f"{point} of every codec")
    return rd[~drop], (f"Rate points left out of every curve, BD value and RD figure (--exclude-rate-points): "
                       f"{'; '.join(said)} ({int(drop.sum())} RD points).")
