"""Golden-vector helpers: the deterministic HyTIP checkpoint, the recorded official-code cases and how closely
to compare with them (``TOLERANCE``, ``check_symbols``).

The checkpoint is rebuilt from ``tests/data/golden`` following the fill protocol of the golden set's README
(§2-3): 4-D ``*.weight`` kernels are generated from SHAKE-256 of their raw key, everything else is stored in
``small_params.pt``. The 190 MB result is cached outside the repository, named by its content hash.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

DATA_DIR = Path(__file__).resolve().parent / "data" / "golden"
CONTENT_SHA256 = "7bcf274782c30c9e09051ef27c4d071136127a03ffbb50cc5503c8e948a09013"

DEFAULT_GAIN = 1.2
# First match wins (golden README §3): heads whose default gain would leave a path inactive.
GAIN_OVERRIDES = (
    (re.compile(r"^if_model\.module\.net\.hyper_enc\.3\.weight$"), 20.0),
    (re.compile(r"^CondMotion\.module\.net\.mv_hyper_prior_encoder\.3\.weight$"), 20.0),
    (re.compile(r"^Residual\.module\.net\.contextual_hyper_prior_encoder\.3\.weight$"), 20.0),
    (re.compile(r"^Residual\.module\.net\.MaskGenerator\.net\.up_1\.4\.weight$"), 100.0),
    (re.compile(r"^Residual\.module\.net\.contextual_decoder\."), 1.5),
)


def cache_dir() -> Path:
    """Where large generated artefacts live; ``HYTIP_BENCH_CACHE`` overrides ``~/.cache/hytip-bench``."""
    root = os.environ.get("HYTIP_BENCH_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "hytip-bench"


def gain_for(raw_key: str) -> float:
    for pattern, gain in GAIN_OVERRIDES:
        if pattern.search(raw_key):
            return gain
    return DEFAULT_GAIN


def is_generated(raw_key: str, shape) -> bool:
    return raw_key.endswith(".weight") and len(shape) == 4


def generate_kernel(raw_key: str, shape) -> np.ndarray:
    """Uniform(-b, b) kernel defined by SHAKE-256(raw_key), b = gain / sqrt(fan_in); float32, row-major."""
    shape = tuple(int(s) for s in shape)
    n = math.prod(shape)
    stream = hashlib.shake_256(raw_key.encode("utf-8")).digest(4 * n)
    k = (np.frombuffer(stream, dtype="<u4") >> 8).astype(np.float64)   # top 24 bits of each LE word
    b = gain_for(raw_key) / math.sqrt(shape[1] * shape[2] * shape[3])
    w = (2.0 * k + (1.0 - 2.0 ** 24)) * (b / 2.0 ** 24)                 # float64, one rounding below
    return w.astype(np.float32).reshape(shape)


def content_sha256(state_dict: dict) -> str:
    """Hash of keys, dtypes, shapes and tensor bytes in order; independent of torch's file container."""
    h = hashlib.sha256()
    for key, t in state_dict.items():
        t = t.detach().cpu().contiguous()
        h.update(key.encode("utf-8"))
        h.update(str(t.dtype).encode())
        h.update(json.dumps(list(t.shape)).encode())
        if t.numel():
            h.update(t.numpy().tobytes())
    return h.hexdigest()


def load_manifest() -> dict:
    with open(DATA_DIR / "manifest.json") as f:
        return json.load(f)


def build_state_dict() -> dict:
    """Raw-key state dict (with the ``.module.`` segment) in manifest order."""
    entries = load_manifest()["entries"]
    small = torch.load(DATA_DIR / "small_params.pt", map_location="cpu", weights_only=True)
    sd = {}
    for e in entries:
        key, shape = e["raw_checkpoint_key"], e["shape"]
        if is_generated(key, shape):
            t = torch.from_numpy(generate_kernel(key, shape))
        else:
            t = small[key].detach().clone().contiguous()
        if list(t.shape) != list(shape) or str(t.dtype) != "torch." + e["dtype"]:
            raise ValueError(f"{key}: built {list(t.shape)} {t.dtype}, manifest says {shape} {e['dtype']}")
        sd[key] = t
    stored = {e["raw_checkpoint_key"] for e in entries if not is_generated(e["raw_checkpoint_key"], e["shape"])}
    if set(small) != stored:
        raise ValueError(f"small_params.pt keys differ from the manifest's stored entries: "
                         f"{sorted(set(small) ^ stored)[:5]}")
    return sd


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 24), b""):
            h.update(chunk)
    return h.hexdigest()


def golden_checkpoint_path() -> Path:
    """Build (once) and return the golden ``{"epoch", "state_dict"}`` checkpoint file.

    A sidecar file records the sha256 of the bytes we wrote after the content hash was verified, so a
    cached file is reused only if it is byte-identical to a verified build.
    """
    path = cache_dir() / f"golden-{CONTENT_SHA256[:16]}.pth.tar"
    sidecar = path.with_suffix(".tar.sha256")
    if path.exists() and sidecar.exists() and _file_sha256(path) == sidecar.read_text().strip():
        return path
    sd = build_state_dict()
    got = content_sha256(sd)
    if got != CONTENT_SHA256:
        raise RuntimeError(f"golden checkpoint content sha256 {got} != expected {CONTENT_SHA256}")
    buf = io.BytesIO()
    torch.save({"epoch": 0, "state_dict": sd}, buf)
    data = buf.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    sidecar.write_text(hashlib.sha256(data).hexdigest() + "\n")
    return path


def load_case(name: str) -> dict:
    """Arrays of ``cases/case_<name>.npz`` as numpy arrays, plus ``meta`` (the parsed case JSON)."""
    path = DATA_DIR / "cases" / f"case_{name}.npz"
    with np.load(path, allow_pickle=False) as z:
        out = {k: z[k] for k in z.files}
    out["meta"] = json.loads(str(out.pop("meta_json")))
    return out


# ---- tolerances against the golden vectors -------------------------------------------------------------------
# The golden set's README §8 (and its drift_summary.json) reran the official code with the same weights and
# inputs under other execution settings (2 threads, channels_last, no oneDNN, float64): how far it drifts from
# its own golden run is how far a correct implementation on another CPU, ISA or torch version may drift.


@dataclass(frozen=True)
class Tolerance:
    """Per-frame bounds against a golden case; "rel" bounds are relative to the golden value."""

    est_bpp_total_rel: float
    est_bpp_component_rel: float      # mv_y, mv_z, y, z
    psnr_rgb_abs_db: float            # PSNR-RGB against the source
    recon_psnr_min_db: float          # recon against the golden recon ...
    recon_mean_abs: float             # ... and its mean absolute difference
    flow_hat_mean_abs: float          # px
    flow_hat_max_abs: float           # px
    spynet_flow_max_abs: float        # px, SPyNet flow of P-frame 1
    mc_frame_max_abs: float
    string_bytes_rel: float           # strings our coder codes as the release does: intra, mv_y, y steps
    symbol_flips: int                 # at the first symbol array that differs, each by ±1 (check_symbols)
    cdf_index_flips: int              # in total, each by ±1


# README §8 suggested tolerances for an independent float32 implementation (2-3x the official code's own drift;
# beyond them: a rate or a reconstruction that is wrong, not noisy).
STRING_BYTES_REL = 0.04
FRAME_BYTES_REL = 0.015
# Case B (q/QP 63) is chaotic: in every variant 4-5 of the 24,576 intra y symbols round the other way and the
# temporal recurrence carries that on, so B gets the suggested tolerances; 12 symbol flips is 2-3x the 4-5.
# CDF indexes are compared only up to the first flipped symbol, where B is as calm as A: the same 3 flips.
SUGGESTED = Tolerance(est_bpp_total_rel=0.01, est_bpp_component_rel=0.015, psnr_rgb_abs_db=0.01,
                      recon_psnr_min_db=35.0, recon_mean_abs=0.02, flow_hat_mean_abs=0.05, flow_hat_max_abs=1.5,
                      spynet_flow_max_abs=0.03, mc_frame_max_abs=0.25, string_bytes_rel=STRING_BYTES_REL,
                      symbol_flips=12, cdf_index_flips=3)
# Case A (q/QP 0) is stable: in every variant the official code kept every symbol and byte count, its rates
# within 1.1e-7 relative, recon >= 129 dB against golden (mean abs <= 2.7e-7), flows within 1.3e-6 px, mc_frame
# within 4.5e-6, with one CDF-index flip in one variant (3 allowed). The bounds below sit about 4x or more above
# that drift (and above ours under other oneDNN ISAs, thread counts and torch 2.1, with MKL's reproducible kernels:
# tests/conftest.py): a real change of the numerics breaks them.
STABLE = Tolerance(est_bpp_total_rel=1e-6, est_bpp_component_rel=1e-6, psnr_rgb_abs_db=1e-5,
                   recon_psnr_min_db=110.0, recon_mean_abs=1e-6, flow_hat_mean_abs=1e-6, flow_hat_max_abs=1e-5,
                   spynet_flow_max_abs=1e-5, mc_frame_max_abs=2e-5, string_bytes_rel=0.0,
                   symbol_flips=0, cdf_index_flips=3)
TOLERANCE = {"A": STABLE, "B": SUGGESTED}
# The bf16 kernels (hytip.fast) on what a results table reports, a frame's total rate and PSNR-RGB: twice the
# suggested float32 bounds. Measured maxima on A and B: 0.56 % and 0.008 dB, within the float32 bounds on this
# machine, but bfloat16 rounds differently on other hardware (AMX, emulation) and one bfloat16 rounding more moved
# A's P4 to 1.02 %; the intra coder wrongly in bfloat16 moves a rate by 4 %, which these still catch.
BF16 = replace(SUGGESTED, est_bpp_total_rel=2 * SUGGESTED.est_bpp_total_rel,
              psnr_rgb_abs_db=2 * SUGGESTED.psnr_rgb_abs_db)


def check_symbols(arrays, tol: Tolerance) -> None:
    """Compare ``(label, kind, ours, golden)`` integer arrays in coding order (kind "symbols" or
    "cdf_indexes") the way README §8 tells to find a first divergence: float noise is a few ±1 differences
    (values near x.5, σ near a table boundary); more, or larger ones, are a structured mismatch, i.e. a bug.

    A flipped CDF index changes no value, so comparison goes on; a flipped symbol changes everything coded
    after it (the recurrence carries it on), so comparison stops there.
    """
    cdf_flips = 0
    for label, kind, ours, gold in arrays:
        diff = np.asarray(ours, dtype=np.int64) - np.asarray(gold, dtype=np.int64)
        n = int(np.count_nonzero(diff))
        if n == 0:
            continue
        where = f"{label}: {n} {kind} differ from golden, by up to {int(np.abs(diff).max())}"
        assert np.abs(diff).max() <= 1, where
        if kind == "cdf_indexes":
            cdf_flips += n
            assert cdf_flips <= tol.cdf_index_flips, f"{where}; {cdf_flips} CDF-index flips so far"
        else:
            assert n <= tol.symbol_flips, where
            return
