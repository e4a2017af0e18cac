"""Codecs by spec: the JSON dict a codec's `spec()` returns rebuilds it, in the sweep's process or in a worker."""
from __future__ import annotations

from bench.codecs.conventional import ConventionalCodec
from bench.codecs.encoders import ENCODERS
from bench.codecs.hytip_codec import HytipCodec
from bench.errors import InputError

KINDS = ("hytip", "conventional")


def make_codec(spec: dict):
    """`{"kind": "hytip", "checkpoint": ..., "model": ..., "threads": ..., "kernels": "exact"}` or
    `{"kind": "conventional", "encoder": "x265", "mode": "yuv420", "options": {...}}`."""
    kind = spec.get("kind")
    if kind == "hytip":
        return HytipCodec(str(spec["checkpoint"]), spec.get("model", "PSNR-RGB"), spec.get("threads"),
                          spec.get("kernels", "exact"))
    if kind == "conventional":
        if spec.get("encoder") not in ENCODERS:
            raise InputError(f"unknown encoder {spec.get('encoder')!r}; expected one of {', '.join(ENCODERS)}")
        return ConventionalCodec(spec["encoder"], spec.get("mode", "yuv420"),
                                 tuple(sorted((spec.get("options") or {}).items())))
    raise InputError(f"unknown codec kind {kind!r}; expected one of {', '.join(KINDS)}")
