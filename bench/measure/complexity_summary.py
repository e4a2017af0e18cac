"""HyTIP's complexity as one JSON-ready dict (a complexity.json configuration's figures), counted by
``bench.measure.complexity`` once per code version and kept in the user cache: reading it back needs neither torch nor
the model, so a report starts without them.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
from pathlib import Path

import hytip

COUNTING = [Path(__file__).with_name(name) for name in ("complexity.py", "counting.py")]   # part of the cache key


def _summary_cache(counters, h: int, w: int) -> Path:
    """The count depends only on the code (hytip, the counting module), the counters, the size and the counter and
    torch versions; the user cache ($HYTIP_BENCH_CACHE, default ~/.cache/hytip-bench) keeps it per those."""
    digest = hashlib.sha256()
    for path in sorted(Path(hytip.__file__).parent.glob("*.py")) + COUNTING:
        digest.update(path.read_bytes())
    versions = " ".join(importlib.metadata.version(p) for p in ("ptflops", "torch"))
    digest.update(f"{versions} {sorted(counters)} {w}x{h}".encode())
    root = Path(os.environ.get("HYTIP_BENCH_CACHE") or Path.home() / ".cache" / "hytip-bench")
    return root / f"hytip_complexity_{digest.hexdigest()[:16]}.json"


def summary_of(params, macs, buffer, deconv_rule: str) -> dict:
    """HyTIP's counts (``bench.measure.complexity`` records) as a complexity.json configuration's figures."""
    from bench.measure.counting import UNSEEN_RULES

    entry = {"deconv_rule": deconv_rule, "parameters_total": params.total, "model_size": params.model_size,
             "temporal_buffer_channels": buffer.total_channel_equivalent, "size": f"{buffer.width}x{buffer.height}",
             "temporal_buffer_tensors": {t.name: [t.channels, t.scale] for t in buffer.tensors},
             "protocol": f"{params.protocol}; {buffer.protocol}"}
    pixels = buffer.width * buffer.height
    for m in macs:
        prefix = "enc" if m.path == "encode" else "dec"
        suffix = "" if m.counter == "ptflops" else f"_{m.counter}"
        entry[f"{prefix}_kmac_per_pixel{suffix}"] = m.kmac_per_pixel
        entry[f"counter{suffix}"] = f"{m.counter} {m.counter_version}"
        entry[f"{prefix}_kmac_protocol{suffix}"] = m.protocol
        if m.counter == "ptflops":
            entry[f"{prefix}_unseen"] = {u.op: {"calls": u.calls, "kmac_per_pixel": u.macs / pixels / 1e3,
                                                "rule": UNSEEN_RULES[u.op]} for u in m.unseen}
    return entry


def hytip_summary(counters=("ptflops",), h: int = 256, w: int = 448) -> dict:
    """HyTIP's complexity in one JSON-ready dict (a complexity.json configuration's figures): parameters, model size,
    temporal buffer, and encode/decode kMAC/pixel per counter, each with its protocol. Weights do not matter, so
    the count (about a minute of CPU with ptflops) is cached per code version."""
    cache = _summary_cache(counters, h, w)
    if cache.is_file():
        return json.loads(cache.read_text())
    from bench.measure.complexity import parameter_counts, pframe_kmac_per_pixel, temporal_buffer
    from bench.measure.counting import DEFAULT_DECONV_RULE
    from hytip.model import HyTIP

    model = HyTIP().eval()
    macs = [m for counter in counters for m in pframe_kmac_per_pixel(model, h, w, counter=counter)]
    entry = summary_of(parameter_counts(model), macs, temporal_buffer(model, h, w), DEFAULT_DECONV_RULE)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(entry, indent=1))
    os.replace(tmp, cache)
    return entry
