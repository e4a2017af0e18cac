"""Running a sweep: one job per JobSpec, on lanes (a worker per GPU, or the CPU, beside a CPU pool for encoders).

A job's record holds the codec's result plus the row of the results table (`row`), the frame plan (intra period,
scene cuts) and provenance. Its config hash covers everything the result depends on (codec identity with the
checkpoint's sha256, source, protocol, colour spec, rate point, rate mode, and the VMAF/XPSNR metrics when any are
asked for), so records of another configuration are refused, never mixed in (bench.sweep.jobs); a done record of the
same job measured with fewer of the metrics asked for is redone instead (`supersede_fewer_metrics`). HyTIP's
estimated rate points of one sequence may run as one batch (`execution: rate_point_batch`), each still with its own
record; the batch size is an execution setting, as the device is: the row says it (`rate_point_batch`), the hash does
not cover it.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import subprocess
from dataclasses import asdict, replace
from functools import lru_cache
from itertools import combinations
from pathlib import Path

import torch

from bench import REPO_ROOT
from bench.analysis.rd_schema import RD_COLUMNS, RESULT_COLUMNS
from bench.codecs.base import AVERAGING_TEXT, RatePoint, SourceSpec
from bench.codecs.registry import make_codec
from bench.data.colour import ColourSpec
from bench.sweep.config import JobSpec
from bench.sweep.jobs import Job, Lane, job_key, load_record, record_path, write_record

MODEL_LANE, ENCODER_LANE = "model", "encoder"
AUTO_BATCH_GPU = 4    # rate points per batch on a GPU by default: the paper's per sequence


@lru_cache(maxsize=1)
def provenance() -> dict:
    """Versions and machine of this process (what a number needs to be reproduced)."""
    try:
        commit = subprocess.run(["git", "-C", str(REPO_ROOT), "describe", "--always", "--dirty", "--abbrev=12"],
                                capture_output=True, text=True, timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.TimeoutExpired):
        commit = "unknown"
    try:
        version = importlib.metadata.version("hytip-bench")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return {"project_version": version, "git_commit": commit, "torch_version": torch.__version__,
            "cuda_version": torch.version.cuda or "none", "python": platform.python_version(),
            "cudnn_version": str(torch.backends.cudnn.version()) if torch.backends.cudnn.is_available() else "none"}


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        return f"{device} {torch.cuda.get_device_name(device)}"
    # MKL_CBWR picks MKL's kernels, which round differently per CPU unless fixed: a stream decodes exactly only with
    # the encoder's setting (run_bench.py verify-streams).
    return (f"cpu {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
            f"MKL_CBWR={os.environ.get('MKL_CBWR', 'unset')}")


def _row(result: dict, source: SourceSpec, spec: ColourSpec, color_transform: str, rate: RatePoint, rate_mode: str,
         key: str, config: str, device: str) -> dict:
    metrics = result["metrics"]
    row = {c: None for c in RD_COLUMNS + RESULT_COLUMNS}
    row.update({
        "codec": result["codec"], "codec_version": result["version"],
        # Rate-independent (placeholders for the rate point), as codec_config is part of the curve key.
        "codec_config": result["config"] if result["codec"] == "HyTIP" else f"{result['mode']}: {result['config']}",
        "dataset": source.dataset, "sequence": source.name, "color_transform": color_transform,
        "frames": result["frames"], "intra_period": source.intra_period, "crop": source.crop_text,
        "width": result["width"], "height": result["height"], "input_format": source.pix_fmt,
        "color_matrix": spec.matrix, "color_range": spec.range, "color_filter": spec.filter,
        "rate_point": rate.label, "bpp": result["bpp"], "kbps": result["kbps"],
        "yuv_weights": result.get("yuv_weights", ""), "source": f"hytip-bench run records/{key}.json",
        "model": result.get("model", "n/a"), "i_quality": rate.i_quality, "qp": rate.qp, "rate_mode": rate_mode,
        "decode_check": result["decode_check"], "averaging": AVERAGING_TEXT,
        "enc_seconds": result["enc_seconds"], "dec_seconds": result["dec_seconds"],
        "input_wait_seconds": result.get("input_wait_seconds"),
        "scene_cuts": " ".join(map(str, source.scene_cuts)) or "none", "job": key, "config_sha256": config,
        "checkpoint_sha256": result.get("checkpoint_sha256", "n/a"), "device": device_name(device),
        "threads": str(torch.get_num_threads()), "codec_command": result["command"],
        "rate_point_batch": result.get("rate_point_batch"),
        "video_metrics_protocol": result.get("video_metrics", {}).get("protocol"), **provenance(),
    })
    row.update({k: v for k, v in metrics.items() if k in row})
    return row


def _decoded(member: dict) -> tuple[SourceSpec, ColourSpec, str]:
    """A job's source, colour spec and rate mode (conventional codecs always write real streams)."""
    return (SourceSpec(**{**member["source"], "scene_cuts": tuple(member["source"]["scene_cuts"])}),
            ColourSpec(**member["colour"]), member["rate_mode"] if member["codec"]["kind"] == "hytip" else "real")


def _finish(result: dict, member: dict, src: SourceSpec, spec: ColourSpec, rate_mode: str, device: str) -> dict:
    result["row"] = _row(result, src, spec, member["color_transform"], RatePoint(**member["rate"]), rate_mode,
                         member["key"], member["config"], device)
    result.update(intra_period=src.intra_period, scene_cuts=list(src.scene_cuts), provenance=provenance())
    return result


def code_job(*, device: str = "cpu", **member) -> dict:
    """One (codec, sequence, colour transform, rate point): code, measure, and build its results row."""
    src, spec, rate_mode = _decoded(member)
    result = make_codec(member["codec"]).code(src, RatePoint(**member["rate"]), spec, rate_mode=rate_mode,
                                              folders=member["folders"], device=device,
                                              metrics=tuple(member.get("metrics", ())))
    return _finish(result, member, src, spec, rate_mode, device)


def code_batch(*, members: list[dict], device: str = "cpu") -> list[dict]:
    """Rate points of one (HyTIP, sequence, colour transform) coded as one batch: a code_job result per member."""
    src, spec, rate_mode = _decoded(members[0])
    results = make_codec(members[0]["codec"]).code_points(
        src, [RatePoint(**m["rate"]) for m in members], spec, rate_mode=rate_mode, folders=members[0]["folders"],
        device=device, metrics=tuple(members[0].get("metrics", ())))
    return [_finish(result, member, src, spec, rate_mode, device) for result, member in zip(results, members)]


def spec_key(spec: JobSpec, rate_mode: str) -> str:
    s, c = spec.source, spec.codec
    if c["kind"] == "hytip":
        kernels = c.get("kernels", "exact")
        head = (f"hytip-{c['model']}" + ("" if kernels == "exact" else f"-{kernels}"), rate_mode)
    else:  # the key `run_bench.py anchors` has always used
        head = (c["encoder"], c["mode"])
    return job_key(*head, s.dataset, s.name, spec.rate.label, f"f{s.frames}", f"ip{s.intra_period}",
                   spec.color_transform)


def spec_config(spec: JobSpec, rate_mode: str) -> str:
    source = asdict(spec.source)
    source.pop("path")  # the same file may move; geometry, frames and protocol stay in the hash
    what = {"codec": spec.identity, "source": source, "rate": asdict(spec.rate), "colour": spec.colour.describe(),
            "color_transform": spec.color_transform, "rate_mode": rate_mode if spec.codec["kind"] == "hytip" else "real"}
    if spec.metrics:   # only then: the hashes of jobs without them stay as they were
        what["metrics"] = list(spec.metrics)
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _batch_tag(spec: JobSpec, rate_mode: str) -> str:
    """What the rate points of one batch share: codec, source, colour, rate mode (HyTIP estimated rates only)."""
    if spec.codec["kind"] != "hytip" or rate_mode != "estimated":
        return ""
    what = {"codec": spec.codec, "source": asdict(spec.source), "colour": spec.colour.describe(),
            "color_transform": spec.color_transform, "metrics": list(spec.metrics)}
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:16]


def make_jobs(specs: list[JobSpec], out: Path, rate_mode: str) -> list[Job]:
    jobs = []
    for spec in specs:
        key, config = spec_key(spec, rate_mode), spec_config(spec, rate_mode)
        folders = {"work": str(out / "work" / key), "logs": str(out / "logs" / key),
                   "bitstreams": str(out / "bitstreams" / key)}
        batch = _batch_tag(spec, rate_mode)
        jobs.append(Job(key, code_job, {
            "codec": spec.codec, "source": asdict(spec.source), "rate": asdict(spec.rate),
            "colour": spec.colour.describe(), "color_transform": spec.color_transform, "rate_mode": rate_mode,
            "folders": folders, "key": key, "config": config, "rate_selection": spec.rate_selection,
            "metrics": list(spec.metrics)},
            lane=MODEL_LANE if spec.codec["kind"] == "hytip" else ENCODER_LANE, config=config,
            batch=batch, batch_fn=code_batch if batch else None))
    return jobs


def supersede_fewer_metrics(specs: list[JobSpec], jobs: list[Job], records: Path, rate_mode: str) -> list[str]:
    """Mark the done records of these jobs that were measured with fewer of the metrics now asked for (the same job
    otherwise) as "superseded", so that the run redoes them rather than refusing them as another configuration;
    their keys. A record with more metrics than asked for stays another configuration."""
    marked = []
    for spec, job in zip(specs, jobs):
        if not spec.metrics:
            continue
        fewer = {spec_config(replace(spec, metrics=subset), rate_mode)
                 for size in range(len(spec.metrics)) for subset in combinations(spec.metrics, size)}
        record = load_record(records, job.key)
        if record and record.get("status") == "done" and record.get("config") in fewer:
            write_record(record_path(records, job.key), {**record, "status": "superseded", "superseded_by": job.config})
            marked.append(job.key)
    return marked


def rate_point_batch(value, device: str) -> int:
    """Rate points per HyTIP batch on `device`: an int, or "auto": the paper's 4 on a GPU, 1 on the CPU (where a
    batch is slower: `codec_speed --modes estimate batched`, docs/benchmarks.md)."""
    if value == "auto":
        return AUTO_BATCH_GPU if device.startswith("cuda") else 1
    return value


def lanes(devices: str | list[str] = "auto", encoder_jobs: int = 1, metrics_device: str = "cpu",
          batch="auto") -> list[Lane]:
    """A worker process per GPU for model jobs (spawned: CUDA cannot be forked), else this process on the CPU;
    encoder jobs in a CPU pool of `encoder_jobs` processes beside them (this process when 1 and no GPU). `batch`:
    HyTIP rate points per batch (`rate_point_batch`)."""
    if devices == "auto":
        devices = [f"cuda:{i}" for i in range(torch.cuda.device_count())] or ["cpu"]
    elif isinstance(devices, str):
        devices = [d.strip() for d in devices.split(",") if d.strip()]
    gpu = [d for d in devices if d.startswith("cuda")]
    model = ([Lane(MODEL_LANE, 1, d, "spawn", batch=rate_point_batch(batch, d)) for d in gpu]
             or [Lane(MODEL_LANE, 0, "cpu", batch=rate_point_batch(batch, "cpu"))])
    encoder_workers = encoder_jobs if encoder_jobs > 1 or gpu else 0
    # Each encoder worker measures with one torch thread: the pool, not torch, spreads the work over the cores.
    return model + [Lane(ENCODER_LANE, encoder_workers, metrics_device, initializer=torch.set_num_threads,
                         initargs=(1,))]
