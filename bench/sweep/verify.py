"""Decode a sweep's streams again, here, and check them against the manifest their jobs recorded.

A learned codec's stream may not decode on another device than the one that coded it (the entropy model's
parameters are floating point), so every real-bitstream job records a manifest: the stream's sha256 (HyTIP: the
result's "bitstream_sha256"; conventional encoders: each GOP segment's "sha256") and the sha256 of each decoded frame
in display order (per_frame "recon_sha256": HyTIP's float32 reconstruction, a conventional decoder's planes), coded on
the device of the row's "device" column. `verify` finds each stream under RESULTS_DIR/bitstreams/<job>/ (so a sweep
folder copied to another machine verifies there), checks its sha256, decodes it (HyTIP on the chosen device with the
settings the sweep uses; conventional streams with the encoder's decoder) and compares the frames' hashes.
"""
from __future__ import annotations

import hashlib
import json
import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from bench.codecs.conventional import frame_sha256
from bench.codecs.encoders import EncoderFailed, RawVideo, make_encoder
from bench.codecs.hytip_codec import _loaded, file_sha256, recon_sha256
from bench.codecs.weights import find_checkpoint
from bench.errors import InputError
from bench.sweep.jobs import load_record
from bench.sweep.runner import device_name
from hytip.bitstream import BitstreamError
from hytip.errors import HytipError

STATUSES = ("match", "mismatch", "missing", "failed", "no manifest")
CONVENTIONAL_OPTIONS = ("threads", "encoder_app", "decoder_app", "cfg")   # what make_encoder takes from a codec entry


@dataclass
class Verdict:
    """One job's streams: `status` one of STATUSES; frames are 1-based display numbers (per_frame "number")."""

    job: str
    codec: str
    coded_on: str                            # the row's device and torch version
    status: str
    detail: str
    streams: list[str] = field(default_factory=list)
    stream_changed: bool | None = None       # sha256 differs from the manifest's; None: not checked
    first_differing_frame: int | None = None
    failed_at_frame: int | None = None


@dataclass
class Report:
    results_dir: str
    decoded_on: str                          # device_name() of the decoding device
    torch_version: str
    verdicts: list[Verdict]
    without_streams: int                     # done jobs that wrote no stream (HyTIP estimated rates)

    def counts(self) -> dict[str, int]:
        return {status: sum(v.status == status for v in self.verdicts) for status in STATUSES}

    @property
    def ok(self) -> bool:
        return all(v.status == "match" for v in self.verdicts)

    def to_json(self) -> dict:
        return {"results_dir": self.results_dir, "decoded_on": self.decoded_on, "torch_version": self.torch_version,
                "summary": self.counts(), "jobs_without_streams": self.without_streams,
                "jobs": [asdict(v) for v in self.verdicts]}


def check_device(device: str) -> str:
    """`device` if it is cpu, cuda or cuda:N and present on this machine."""
    if not re.fullmatch(r"cpu|cuda(:\d+)?", device):
        raise InputError(f"--device {device!r}: expected cpu, cuda or cuda:N")
    if device.startswith("cuda"):
        index = int(device.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise InputError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s) "
                             f"(torch {torch.__version__}, CUDA {torch.version.cuda or 'none'})")
    return device


def verify(results_dir, device: str = "cpu", checkpoints: dict[str, str] | None = None) -> Report:
    """Every done job of the sweep folder `results_dir` that wrote streams, verified on `device`; `checkpoints`
    (model -> path) override the sweep config's. A HyTIP checkpoint that is missing, or is not the one a job was coded
    with (its record's checkpoint_sha256), is an InputError before anything is decoded."""
    folder = Path(results_dir)
    records = _done_records(folder)
    config = _sweep_config(folder)
    streamed = [r for r in records if r["result"].get("bitstream") or r["result"].get("segments")]
    if not streamed:
        raise InputError(f"{folder}: none of its {len(records)} done job(s) wrote a stream (HyTIP writes them with "
                         "--rate-mode real); nothing to verify")
    models = _checkpoints(streamed, config, checkpoints or {})
    threads = config.get("execution", {}).get("threads")
    encoders = {}
    verdicts = []
    with tempfile.TemporaryDirectory(prefix="verify-streams-") as work:
        for record in streamed:
            result = record["result"]
            if result.get("segments"):
                name = result["encoder"]
                if name not in encoders:
                    encoders[name] = _backend(name, config)
                verdicts.append(_conventional(record, folder, encoders[name], Path(work)))
            else:
                entry = _hytip_entry(config, result["model"])
                codec_threads = entry.get("threads", threads)
                verdicts.append(_hytip(record, folder, device, models.get(result["model"]), codec_threads))
    return Report(str(folder), device_name(device), torch.__version__, verdicts, len(records) - len(streamed))


# ---------------------------------------------------------------------------------------------------- inputs
def _done_records(folder: Path) -> list[dict]:
    records = folder / "records"
    if not records.is_dir():
        raise InputError(f"{folder}: not a sweep folder (no records/ inside; give the --out of run_bench.py run)")
    loaded = [load_record(records, path.stem) for path in sorted(records.glob("*.json"))]
    return [r for r in loaded if r and r.get("status") == "done" and isinstance(r.get("result"), dict)]


def _sweep_config(folder: Path) -> dict:
    """The sweep's config from sweep.json; {} where there is none (`run_bench.py anchors` writes none)."""
    path = folder / "sweep.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("config") or {}
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read the sweep's config ({exc})") from None


def _hytip_entry(config: dict, model: str) -> dict:
    return next((e for e in config.get("codecs") or [] if e.get("codec") == "hytip"
                 and e.get("model", "PSNR-RGB") == model), {})


def _checkpoints(records: list[dict], config: dict, given: dict[str, str]) -> dict[str, str]:
    """Model -> checkpoint path for the HyTIP jobs to decode, each checked against its jobs' checkpoint_sha256."""
    out = {}
    for record in records:
        result = record["result"]
        if result.get("segments") or not _hytip_manifest(result):
            continue
        model, wanted = result["model"], result["checkpoint_sha256"]
        path = out.get(model) or given.get(model) or _hytip_entry(config, model).get("checkpoint") \
            or find_checkpoint(model)
        if not path:
            raise InputError(f"job {record['key']}: HyTIP {model}: the sweep's config names no checkpoint and none "
                             f"is in models/ or the cache; give --checkpoint {model}=PATH")
        if not Path(path).is_file():
            raise InputError(f"HyTIP {model}: checkpoint {path} not found; give --checkpoint {model}=PATH")
        if file_sha256(str(path)) != wanted:
            raise InputError(f"HyTIP {model}: checkpoint {path} has sha256 {file_sha256(str(path))}, job "
                             f"{record['key']} was coded with {wanted}; give --checkpoint {model}=PATH of that file")
        out[model] = str(path)
    return out


def _backend(name: str, config: dict):
    """The decoder of encoder `name`, with the options (ffmpeg threads, VTM paths) of its sweep config entry."""
    entry = next((e for e in config.get("codecs") or [] if e.get("codec") == name), {})
    backend = make_encoder(name, **{k: entry[k] for k in CONVENTIONAL_OPTIONS if entry.get(k)})
    backend.check()
    return backend


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _coded_on(result: dict) -> str:
    row = result.get("row") or {}
    return f"{row.get('device', 'unknown device')}; torch {row.get('torch_version', 'unknown')}"


# ---------------------------------------------------------------------------------------------------- verdicts
def _hytip_manifest(result: dict) -> bool:
    return bool(result.get("bitstream_sha256") and result["per_frame"].get("recon_sha256"))


def _no_manifest(record: dict, codec: str, streams: list[str]) -> Verdict:
    return Verdict(record["key"], codec, _coded_on(record["result"]), "no manifest",
                   "recorded before streams had a manifest: delete its record "
                   f"(records/{record['key']}.json) and rerun the sweep's command to code it again", streams)


def _hytip(record: dict, folder: Path, device: str, checkpoint: str | None, threads: int | None) -> Verdict:
    result, key = record["result"], record["key"]
    codec = f"HyTIP {result['model']}"
    stream = folder / "bitstreams" / key / Path(result["bitstream"]).name
    if not _hytip_manifest(result):
        return _no_manifest(record, codec, [str(stream)])
    verdict = Verdict(key, codec, _coded_on(result), "", "", [str(stream)])
    if not stream.is_file():
        return _set(verdict, "missing", f"stream not found: {stream}")
    verdict.stream_changed = _sha256(stream) != result["bitstream_sha256"]
    changed = "stream sha256 differs from the manifest; " if verdict.stream_changed else ""
    numbers = result["per_frame"]["number"]
    hashes = []
    try:
        # The same model object, device settings and threads as the sweep's jobs (HytipCodec).
        for frame in _loaded(checkpoint, device, threads).decompress(stream):
            # As HytipCodec._code hashes the encoder's reconstructions.
            hashes.append(recon_sha256(frame.recon))
    except HytipError as exc:
        return _failed(verdict, changed, str(exc), _failed_frame(exc, numbers))
    return _compare(verdict, changed, hashes, result["per_frame"]["recon_sha256"], numbers)


def _failed_frame(exc: HytipError, numbers: list[int]) -> int | None:
    """The display number of the frame an error names: BitstreamError counts records from 0 in coding order (HyTIP
    codes in display order), the decoder's own errors name the frame's number."""
    found = re.search(r": frame (\d+)\b", str(exc))
    if not found:
        return None
    index = int(found.group(1))
    if isinstance(exc, BitstreamError):
        return numbers[index] if index < len(numbers) else None
    return index


def _conventional(record: dict, folder: Path, backend, work: Path) -> Verdict:
    result, key = record["result"], record["key"]
    segments, codec = result["segments"], result["encoder"]
    paths = [folder / "bitstreams" / key / Path(s["bitstream"]).name for s in segments]
    if not result["per_frame"].get("recon_sha256") or not all(s.get("sha256") for s in segments):
        return _no_manifest(record, codec, [str(p) for p in paths])
    verdict = Verdict(key, codec, _coded_on(result), "", "", [str(p) for p in paths])
    absent = [str(p) for p in paths if not p.is_file()]
    if absent:
        return _set(verdict, "missing", f"{len(absent)} of {len(paths)} segment stream(s) not found: "
                                        + ", ".join(absent))
    differ = [k for k, (p, s) in enumerate(zip(paths, segments)) if _sha256(p) != s["sha256"]]
    verdict.stream_changed = bool(differ)
    changed = (f"segment stream(s) {', '.join(map(str, differ))}: sha256 differs from the manifest; "
               if differ else "")
    # The layout the encoder was fed; the decoders take it from the stream, ffmpeg writes it back in this format.
    # The record keeps no frame rate, only kbps = bits * fps / frames / 1000; nothing here depends on it.
    fps = result["kbps"] * 1000 * result["frames"] / result["bits"]
    hashes = []
    for k, (path, segment) in enumerate(zip(paths, segments)):
        like = RawVideo(work / f"{key}.seg{k:02d}.yuv", result["width"], result["height"], result["input_format"],
                        segment["frames"], fps)
        try:
            out = backend.decode(path, like, work / f"{key}.seg{k:02d}.decoded.yuv", work / f"{key}.seg{k:02d}.log")
        except EncoderFailed as exc:
            last = segment["first_frame"] + segment["frames"] - 1
            return _failed(verdict, changed, f"segment {k} (frames {segment['first_frame']}..{last}): {exc}", None)
        hashes += [frame_sha256(out.read(i)) for i in range(out.frames)]
        out.path.unlink()
    return _compare(verdict, changed, hashes, result["per_frame"]["recon_sha256"], result["per_frame"]["number"])


def _set(verdict: Verdict, status: str, detail: str) -> Verdict:
    verdict.status, verdict.detail = status, detail
    return verdict


# `changed`: what the verdict's detail starts with when a stream's sha256 differs from the manifest, else "".
def _failed(verdict: Verdict, changed: str, error: str, frame: int | None) -> Verdict:
    verdict.failed_at_frame = frame
    where = f"at frame {frame}" if frame is not None else "(frame unknown)"
    return _set(verdict, "failed", f"{changed}decoding failed {where}: {error}")


def _compare(verdict: Verdict, changed: str, hashes: list[str], expected: list[str], numbers: list[int]) -> Verdict:
    differing = [n for n, got, want in zip(numbers, hashes, expected) if got != want]
    if len(hashes) != len(expected):
        # The first frame one side lacks differs too, after any differing frame both have.
        differing.append(numbers[min(len(hashes), len(expected))])
        counted = f"{len(hashes)} frames decoded, the manifest has {len(expected)}"
    else:
        counted = f"{len(differing)} of {len(expected)} decoded frames differ"
    if differing:
        verdict.first_differing_frame = differing[0]
        return _set(verdict, "mismatch", f"{changed}frame {differing[0]} differs first ({counted})")
    if changed:
        return _set(verdict, "mismatch", f"{changed}its {len(hashes)} decoded frames equal the manifest's")
    return _set(verdict, "match", f"stream sha256 and {len(hashes)} decoded frames equal the manifest")
