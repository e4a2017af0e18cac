"""`run_bench.py verify-streams`: decode a sweep's streams again, on this machine, and check them against the
manifest each job recorded (the stream's sha256 and every decoded frame's), to show whether streams coded on one
device decode exactly on another (bench/sweep/verify.py).

Per job: match, mismatch (with the first differing frame, 1-based display order), missing stream file, failed
decode (the error and the frame it happened at where known), or no manifest (a record from before manifests: rerun
the job). HyTIP decodes on --device with the checkpoint of the sweep's config (or --checkpoint), which must be the
one the job was coded with; conventional streams decode with their encoder's decoder (ffmpeg, VTM), on the CPU.
Exit status 0 when every job matches, 1 otherwise.
"""
from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from bench.errors import InputError
from bench.sweep.verify import Report, check_device, verify

EXAMPLE = "run_bench.py verify-streams runs/quick --device cuda:0"


def _checkpoints(texts: list[str]) -> dict[str, str]:
    out = {}
    for text in texts:
        model, sep, path = text.partition("=")
        if not sep:   # a bare path names its model, as in `run --checkpoint`
            model, path = Path(text).name.removesuffix(".pth.tar"), text
        if not model or not path:
            raise InputError(f"--checkpoint {text!r}: expected MODEL=PATH, e.g. PSNR-RGB=models/PSNR-RGB.pth.tar")
        out[model] = path
    return out


def print_report(report: Report) -> None:
    width = max(len(v.job) for v in report.verdicts)
    codec_width = max(len(v.codec) for v in report.verdicts)
    print(f"{'job':<{width}}  {'codec':<{codec_width}}  {'result':<11}  detail")
    for v in report.verdicts:
        print(f"{v.job:<{width}}  {v.codec:<{codec_width}}  {v.status:<11}  {v.detail}")
    counts = report.counts()
    print(f"verify-streams: {counts['match']} match, {counts['mismatch']} mismatch, {counts['missing']} missing, "
          f"{counts['failed']} failed, {counts['no manifest']} without manifest, of {len(report.verdicts)} jobs with "
          f"streams ({report.without_streams} done jobs wrote none: HyTIP estimated rates)")
    print(f"decoded on: {report.decoded_on}; torch {report.torch_version} (HyTIP; conventional streams with their "
          "encoders' decoders)")
    for coded_on, jobs in Counter(v.coded_on for v in report.verdicts).items():
        print(f"coded on: {coded_on} ({jobs} jobs)")
    if any(v.status == "mismatch" and not v.stream_changed for v in report.verdicts):
        print("intact streams whose frames differ: the decoder computes otherwise here (device, CPU threads, MKL_CBWR, "
              "torch / oneDNN / cuDNN builds); HyTIP decodes exactly only with the encoder's settings")


def run(args: argparse.Namespace) -> int:
    report = verify(args.results_dir, check_device(args.device), _checkpoints(args.checkpoint or []))
    print_report(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_json(), indent=1) + "\n", encoding="utf-8")
        print(f"JSON: {args.json}")
    return 0 if report.ok else 1


def register(subparsers) -> None:
    p = subparsers.add_parser("verify-streams", help="decode a sweep's streams here and check them against their "
                              "jobs' manifests (cross-device reproducibility)", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results_dir", metavar="RESULTS_DIR", help="a sweep folder (the --out of run_bench.py run)")
    p.add_argument("--device", default="cpu", help="where HyTIP streams are decoded: cpu (default), cuda or cuda:N")
    p.add_argument("--checkpoint", action="append", metavar="[MODEL=]PATH",
                   help="HyTIP checkpoint of a model instead of the sweep config's, repeatable; it must be the file "
                        "the jobs were coded with (their checkpoint_sha256)")
    p.add_argument("--json", metavar="OUT", help="also write the report as JSON to this file")
    p.set_defaults(func=run)
