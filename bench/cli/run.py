"""`run_bench.py run`: the sweep — codecs x sequences x rate points x colour transforms into a resumable store.

A YAML config (configs/) and/or flags define it (bench/sweep/config.py documents the schema). Every job writes
OUT/records/<job>.json atomically; OUT/results.csv and .parquet hold one row per (codec, model, dataset, sequence,
colour transform, rate point) and load in `run_bench.py bdrate` as they are; OUT/complexity.json holds kMAC/pixel,
parameters, temporal buffer, peak memory and fps per codec configuration. A rerun skips finished jobs and redoes
missing and failed ones, and those measured without a metric --metrics now asks for; --force redoes all. Exit status 1
when a job failed (its error is in its record).
"""
from __future__ import annotations

import argparse
import time
from dataclasses import asdict
from pathlib import Path

from bench.argtypes import non_negative_int, positive_float, positive_int
from bench.codecs.encoders import ENCODERS
from bench.data.catalog import COLOR_TRANSFORMS
from bench.data.colour import FILTERS
from bench.errors import InputError
from bench.measure.video_metrics import VIDEO_METRICS
from bench.sweep.config import SweepConfig, codec_objects, expand, preflight
from bench.sweep.jobs import RunSummary, check_configs, run_jobs
from bench.sweep.rate_match import FILE, match_rates
from bench.sweep.runner import MODEL_LANE, lanes, make_jobs, supersede_fewer_metrics
from bench.sweep.store import remove_empty_work, write_complexity, write_results, write_sweep
from hytip.codec import KERNELS

EXAMPLE = "run_bench.py run configs/quick.yaml --data-root /data --dry-run"

HYTIP_MODELS = ("PSNR-RGB", "MS-SSIM-RGB")
HYTIP_KMAC_PER_PIXEL = 1266  # encode, one P-frame (run_bench.py complexity), for the dry run's estimate of the work


def config_from_args(args: argparse.Namespace) -> SweepConfig:
    config = SweepConfig.from_yaml(args.config) if args.config else SweepConfig(codecs=[])
    if args.codecs:
        config.codecs = [{"codec": c} for c in args.codecs if c != "hytip"]
        if "hytip" in args.codecs:
            config.codecs = [{"codec": "hytip", "model": m, "checkpoint": p} for m, p in _checkpoints(args)] + \
                config.codecs
    elif args.checkpoint:
        by_model = dict(_checkpoints(args))
        for entry in config.codecs:
            if entry["codec"] == "hytip" and entry.get("model", "PSNR-RGB") in by_model:
                entry["checkpoint"] = by_model[entry.get("model", "PSNR-RGB")]
    if args.qps:
        for entry in config.codecs:
            if entry["codec"] != "hytip":
                entry["qps"] = args.qps
    if args.kernels:
        for entry in config.codecs:
            if entry["codec"] == "hytip":
                entry["kernels"] = args.kernels
    if args.threads_per_encoder:
        for entry in config.codecs:
            if entry["codec"] != "hytip":
                entry["threads"] = args.threads_per_encoder
    if args.dataset:
        config.datasets, config.input = args.dataset, None
    if args.sequences:
        if len(config.datasets) != 1:
            raise InputError("--sequences needs exactly one dataset")
        config.sequences = {config.datasets[0]: args.sequences}
    if args.input:
        config.input, config.datasets = {"path": args.input, "name": args.name, "dataset": args.dataset_label,
                                         "width": args.width, "height": args.height, "pix_fmt": args.pix_fmt,
                                         "fps": args.fps}, []
        config.input = {k: v for k, v in config.input.items() if v}
    if args.rate_points:
        config.rate_points = _rate_points(args.rate_points)
    if args.match_anchor is not None:
        config.rate_points = {"mode": "match", "per": args.match_per,
                              **({"anchor": args.match_anchor} if args.match_anchor else {})}
    for flag, key in (("frames", "frames"), ("intra_period", "intra_period"), ("crop_multiple", "crop_multiple")):
        if getattr(args, flag) is not None:
            config.protocol[key] = getattr(args, flag)
    if args.crop_size:
        config.protocol["crop_size"] = _size(args.crop_size)
    if args.color_filter:
        config.protocol["color_filter"] = args.color_filter
    if args.no_scene_cuts:
        config.protocol["scene_cuts"] = False
    for flag in ("color_transforms", "rate_mode", "data_root"):
        if getattr(args, flag):
            setattr(config, flag, getattr(args, flag))
    if args.catalog:
        config.catalogs += args.catalog
    if args.metrics:
        config.metrics = list(args.metrics)
    for flag in ("devices", "threads", "encoder_jobs", "rate_point_batch"):
        if getattr(args, flag) is not None:
            config.execution[flag] = getattr(args, flag)
    return config


def _checkpoints(args) -> list[tuple[str, str]]:
    out = []
    for text in args.checkpoint or []:
        model, sep, path = text.partition("=")
        if not sep:
            model, path = Path(text).name.removesuffix(".pth.tar"), text
        out.append((model, path))
    if not out:
        raise InputError("hytip needs --checkpoint PATH (or MODEL=PATH), e.g. models/PSNR-RGB.pth.tar")
    return out


def _batch(text: str):
    if text == "auto":
        return text
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected auto or a positive integer")
    return int(text)


def _size(text: str) -> list[int]:
    width, sep, height = text.partition("x")
    if not (sep and width.isdigit() and height.isdigit()):
        raise InputError(f"--crop-size {text!r}: expected WxH, e.g. 448x256")
    return [int(width), int(height)]


def _rate_points(texts: list[str]):
    """--rate-points: HyTIP's I:QP points, or dense / dense:N (N points per codec, bench.sweep.rate_selection)."""
    if texts[0].startswith("dense"):
        _, sep, n = texts[0].partition(":")
        if len(texts) > 1 or sep and not n.isdigit():
            raise InputError(f"--rate-points {' '.join(texts)}: dense takes one optional count, e.g. dense:24")
        return {"mode": "dense", **({"points": int(n)} if sep else {})}
    return [_rate_point(text) for text in texts]


def _rate_point(text: str) -> dict:
    i, sep, q = text.partition(":")
    try:
        return {"i_quality": int(i), "qp": int(q if sep else i)}
    except ValueError:
        raise InputError(f"--rate-points {text!r}: expected I:QP (e.g. 21:21) or one index") from None


def run_sweep(config: SweepConfig, out: Path, *, dry_run: bool = False, force: bool = False, progress: bool = True,
              executor: str = "local", slurm: dict | None = None, hytip_architecture: bool = False) -> int:
    """The sweep into `out`; exit status 0, or 1 when a job failed. `hytip_architecture`: count HyTIP's complexity
    into complexity.json even when HyTIP is not swept (it needs no weights). With `rate_points: match` the anchor's
    jobs run first, then the probes choose the other codecs' points (bench.sweep.rate_match)."""
    problems = preflight(config)
    if problems:
        raise problems[0] if len(problems) == 1 else InputError(
            f"the sweep cannot start ({len(problems)} problems):\n  " + "\n  ".join(map(str, problems)))
    matching = config.selection.mode == "match"
    specs = expand(config, only=config.match_anchor() if matching else None)
    jobs = make_jobs(specs, out, config.rate_mode)
    execution = config.execution
    batch = execution.get("rate_point_batch", "auto")
    if dry_run:
        _dry_run(specs, jobs, execution, batch)
        if matching:
            print(f"rate_points match: the jobs above are the anchor's; the other codecs' rate points are chosen "
                  f"after them, from probes of each {config.selection.per}'s first GOP (bench.sweep.rate_match)")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    _supersede(specs, jobs, out, config)
    summary = _execute(jobs, out, config, executor, slurm, force, progress)
    if matching:
        if not summary.ok:
            _report_failed(summary, out)
            print("rate matching needs the anchor's results: fix the failed job(s) above and rerun")
            return 1
        model_lane = lanes(execution.get("devices", "auto"), batch=batch)[0]
        chosen, probed = match_rates(config, out, write_results(out, jobs), device=model_lane.device)
        anchor_keys = {job.key for job in jobs}
        specs = expand(config, chosen)
        jobs = make_jobs(specs, out, config.rate_mode)
        _supersede(specs, jobs, out, config)
        rest = _execute([j for j in jobs if j.key not in anchor_keys], out, config, executor, slurm, force, progress)
        probed = [key for key in rest.skipped if key in probed]   # coded in this call, as a probe
        summary = RunSummary({**summary.done, **rest.done}, summary.skipped + [k for k in rest.skipped
                                                                                if k not in probed],
                             summary.ran + rest.ran + probed, rest.failed)
    table = write_results(out, jobs)
    remove_empty_work(out)
    write_complexity(out, codec_objects(config), table, execution.get("complexity_counters", ("ptflops",)),
                     architecture=hytip_architecture)
    done_frames = int(table["frames"].sum()) if len(table) else 0
    elapsed = time.time() - started
    write_sweep(out, asdict(config), {"jobs": len(jobs), "ran": len(summary.ran), "skipped": len(summary.skipped),
                                      "failed": summary.failed, "coded_frames": done_frames, "seconds": elapsed})
    print(f"sweep: {len(summary.ran)} done, {len(summary.skipped)} skipped (done before), {len(summary.failed)} failed "
          f"of {len(jobs)} jobs; {done_frames} coded frames in the table; {elapsed:.1f} s")
    _report_failed(summary, out)
    if len(table):
        print(f"results: {out / 'results.csv'} and {out / 'results.parquet'}; complexity: {out / 'complexity.json'}"
              + (f"; rate matching: {out / FILE}" if matching else ""))
    else:
        print(f"results: none written, no job finished (the errors are in {out / 'records'}; rerun to retry)")
    return 0 if summary.ok else 1


def _supersede(specs, jobs, out: Path, config: SweepConfig) -> None:
    marked = supersede_fewer_metrics(specs, jobs, out / "records", config.rate_mode)
    if marked:
        print(f"sweep: {len(marked)} finished job(s) measured without some of the metrics {', '.join(config.metrics)} "
              "are redone")


def _dry_run(specs, jobs, execution, batch) -> None:
    frames = sum(s.frames for s in specs)
    pixels = sum(s.frames * s.source.crop.width * s.source.crop.height for s in specs)
    for spec, job in zip(specs, jobs):
        print(f"{job.key}  ({job.lane}, {spec.frames} frames {spec.source.crop.width}x{spec.source.crop.height})")
    hytip_pixels = sum(s.frames * s.source.crop.width * s.source.crop.height for s in specs
                       if s.codec["kind"] == "hytip")
    print(f"{len(jobs)} jobs, {frames} frames to code ({pixels / 1e6:.1f} Mpixel); HyTIP encoding about "
          f"{hytip_pixels * HYTIP_KMAC_PER_PIXEL / 1e9:.2f} TMAC ({HYTIP_KMAC_PER_PIXEL} kMAC/pixel, ptflops; "
          "2.6 TMAC per 1080p P-frame)")
    if any(job.batch for job in jobs):
        model = [lane for lane in lanes(execution.get("devices", "auto"), batch=batch) if lane.kind == MODEL_LANE]
        print("HyTIP rate points of a sequence per batch: " +
              ", ".join(f"{lane.batch} on {lane.device}" for lane in model))


def _execute(jobs, out: Path, config: SweepConfig, executor: str, slurm: dict | None, force: bool,
             progress: bool) -> RunSummary:
    execution = config.execution
    batch = execution.get("rate_point_batch", "auto")
    if executor == "slurm":
        from bench.sweep.slurm import run_on_slurm

        if not force:
            check_configs(jobs, out / "records")  # refuse here, not inside every array task
        return run_on_slurm(jobs, out, encoder_jobs=execution.get("encoder_jobs", 1), force=force,
                            batch=batch, **(slurm or {}))
    return run_jobs(jobs, out / "records", lanes=lanes(execution.get("devices", "auto"),
                                                       execution.get("encoder_jobs", 1), batch=batch),
                    desc="sweep", progress=progress, force=force)


def _report_failed(summary: RunSummary, out: Path) -> None:
    for key, error in summary.failed.items():
        print(f"  failed {key}: {error} (record {out / 'records' / (key + '.json')}; rerun to retry)")


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    out = Path(args.out or f"runs/{config.name}")
    slurm = {"tasks": args.slurm_tasks, "cluster": "local" if args.executor == "submitit-local" else None,
             "partition": args.slurm_partition, "gpus_per_task": args.slurm_gpus, "timeout_min": args.slurm_time}
    return run_sweep(config, out, dry_run=args.dry_run, force=args.force, progress=not args.no_progress,
                     executor="slurm" if args.executor != "local" else "local", slurm=slurm)


def register(subparsers) -> None:
    p = subparsers.add_parser("run", help="the sweep: codecs x datasets x rate points x colour transforms",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", nargs="?", help="sweep config YAML (configs/*.yaml); flags below override it")
    p.add_argument("--out", help="results folder (default runs/<config name>)")
    what = p.add_argument_group("what to run")
    what.add_argument("--codecs", nargs="+", choices=["hytip", *ENCODERS], help="codecs (replaces the config's)")
    what.add_argument("--checkpoint", action="append", metavar="[MODEL=]PATH",
                      help=f"HyTIP checkpoint, repeatable; MODEL one of {', '.join(HYTIP_MODELS)} (default: the file "
                           "name without .pth.tar)")
    what.add_argument("--dataset", nargs="+", help="catalogued dataset(s) (datasets.yaml)")
    what.add_argument("--sequences", nargs="+", metavar="NAME", help="only these sequences of the one dataset")
    what.add_argument("--input", metavar="FILE", help="one video file, or 'bundled' for the bundled clip")
    what.add_argument("--name", help="sequence name for --input")
    what.add_argument("--dataset-label", default="custom", help="dataset column for --input (default custom)")
    what.add_argument("--width", type=positive_int, help="width of a raw --input")
    what.add_argument("--height", type=positive_int, help="height of a raw --input")
    what.add_argument("--pix-fmt", help="pixel format of a raw --input: yuv420p, yuv420p10le, gbrp10le")
    what.add_argument("--fps", type=positive_float, help="frame rate of --input when the file does not state it")
    what.add_argument("--data-root", help="folder holding the test sets (default $HYTIP_DATA_ROOT)")
    what.add_argument("--catalog", nargs="+", default=[], metavar="YAML", help="extra catalogue file(s)")
    what.add_argument("--rate-points", nargs="+", metavar="I:QP",
                      help="HyTIP rate points (default 0:0 21:21 42:42 63:63), or dense[:N]: N points (default 16) "
                           "evenly spaced over each codec's protocol span, its own points included")
    what.add_argument("--match-anchor", nargs="?", const="", metavar="CODEC",
                      help="choose every other codec's rate points so that its curve covers the anchor's (default "
                           "anchor: vtm, else vvenc of the sweep), from probes of the first GOP")
    what.add_argument("--match-per", choices=("sequence", "dataset"), default="sequence",
                      help="with --match-anchor: one choice per sequence (default) or per dataset")
    what.add_argument("--qps", type=int, nargs="+", help="QPs of the conventional encoders (default: per encoder)")
    what.add_argument("--color-transforms", nargs="+", choices=COLOR_TRANSFORMS)
    what.add_argument("--metrics", nargs="+", choices=VIDEO_METRICS,
                      help="also measure VMAF (libvmaf, model vmaf_v0.6.1) and/or XPSNR (ffmpeg's xpsnr) on every "
                           "coded frame (off by default: together about 0.07 s per 1080p frame on 2 cores; replaces "
                           "the config's metrics:); finished jobs measured without them are redone")
    proto = p.add_argument_group("protocol")
    proto.add_argument("--frames", type=positive_int, help="frames per sequence (default 96)")
    proto.add_argument("--intra-period", type=positive_int, help="intra period (default 32)")
    proto.add_argument("--crop-multiple", type=positive_int, help="centre crop to a multiple of this (default 64)")
    proto.add_argument("--crop-size", metavar="WxH", help="a centre crop of this size instead (multiples of 16)")
    proto.add_argument("--color-filter", choices=FILTERS,
                       help="chroma filter instead of the colour transform's (BT601: nearest, BT709: bilinear)")
    proto.add_argument("--no-scene-cuts", action="store_true", help="do not code the catalogue's scene cuts as I")
    proto.add_argument("--rate-mode", choices=("estimated", "real"),
                       help="HyTIP: estimated rates (default) or real bitstreams, decoded and checked")
    ex = p.add_argument_group("execution")
    ex.add_argument("--dry-run", action="store_true", help="list the jobs and the work; run nothing")
    ex.add_argument("--force", action="store_true", help="redo finished jobs")
    ex.add_argument("--devices", help="'auto' (every visible GPU, else the CPU), or e.g. cuda:0,cuda:1 or cpu")
    ex.add_argument("--threads", type=positive_int, help="CPU threads of the HyTIP worker (default: torch's)")
    ex.add_argument("--kernels", choices=KERNELS,
                    help="HyTIP kernels: exact (default; the official numerics, float32 also on CUDA), fast (NHWC, "
                         "estimated rates only, within the golden tolerances), bf16 (fast, with the inter coder's "
                         "transforms in bfloat16: estimated rates only, a larger drift; see docs/codec.md) or tf32 "
                         "(exact with TensorFloat-32 on CUDA, as PyTorch's default: estimated rates only)")
    ex.add_argument("--rate-point-batch", type=_batch, metavar="N|auto",
                    help="HyTIP rate points of a sequence coded as one batch (estimated rates): auto (default) 4 on "
                         "a GPU, 1 on the CPU, where a batch is slower; a GPU out of memory splits the batch")
    ex.add_argument("--encoder-jobs", type=positive_int, help="parallel conventional-encoder jobs (default 1)")
    ex.add_argument("--threads-per-encoder", type=positive_int, help="threads of each encoder (default 1)")
    ex.add_argument("--executor", choices=("local", "slurm", "submitit-local"), default="local",
                     help="local (default), slurm (submitit job array), submitit-local (the same on this machine)")
    ex.add_argument("--slurm-tasks", type=positive_int, default=8, help="array tasks (default 8)")
    ex.add_argument("--slurm-partition", help="Slurm partition")
    ex.add_argument("--slurm-gpus", type=non_negative_int, default=1, help="GPUs per array task (default 1)")
    ex.add_argument("--slurm-time", type=positive_int, default=240, help="time limit per task in minutes (default 240)")
    ex.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)
