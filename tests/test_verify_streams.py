"""`run_bench.py verify-streams` on the CPU: a tiny real-mode sweep (HyTIP with the golden checkpoint, whose numbers
are test data, not HyTIP results; x264) is decoded again from a copy of its folder and checked against the manifest
each job recorded; then a corrupted stream, frames that decode otherwise (as on another device), a deleted stream, a
record from before manifests, and bad input."""
import hashlib
import json
import re
import shutil
import subprocess
import sys

import pytest
import torch

import golden
from bench import REPO_ROOT
from bench.cli import main
from bench.data.readers import ffmpeg_exe
from hytip import bitstream as bs
from test_sweep import FRAMES, H, W, argv, data  # noqa: F401  (data: the Tiny dataset fixture)

HYTIP_JOBS = ("hytip-golden__real__Tiny__a__i0-qp0__f2__ip2__BT601",
              "hytip-golden__real__Tiny__a__i63-qp63__f2__ip2__BT601")
X264_JOB = "x264__yuv420__Tiny__a__qp24__f2__ip2__BT601"


@pytest.fixture(scope="module")
def sweep(data, tmp_path_factory):  # noqa: F811
    """Sequence a, BT601: HyTIP at two rate points and x264 at QP 24, real streams."""
    out = tmp_path_factory.mktemp("verify") / "sweep"
    assert main(argv(data, out, "--rate-mode", "real", "--sequences", "a", "--color-transforms", "BT601",
                     "--qps", "24")) == 0
    return out


@pytest.fixture
def results(sweep, tmp_path):
    """A copy of the sweep folder (its records still name the original's paths), for a test to damage."""
    copy = tmp_path / "copy"
    shutil.copytree(sweep, copy)
    return copy


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def result_of(folder, job):
    return json.loads((folder / "records" / f"{job}.json").read_text())["result"]


def edit_record(folder, job, change):
    path = folder / "records" / f"{job}.json"
    record = json.loads(path.read_text())
    change(record["result"])
    path.write_text(json.dumps(record))


def verify(folder, capsys, *extra):
    report = folder.parent / "report.json"
    code = main(["verify-streams", str(folder), "--json", str(report), *map(str, extra)])
    text = capsys.readouterr().out
    return code, text, json.loads(report.read_text()) if report.exists() else None


def by_job(doc):
    return {v["job"]: v for v in doc["jobs"]}


def test_manifest_of_each_real_stream(sweep):
    for job in HYTIP_JOBS:
        result = result_of(sweep, job)
        stream = sweep / "bitstreams" / job / "sequence.hytip"
        assert result["bitstream_sha256"] == sha256(stream.read_bytes())
        hashes = result["per_frame"]["recon_sha256"]
        assert len(hashes) == FRAMES and len(set(hashes)) == FRAMES and all(len(h) == 64 for h in hashes)
        assert result["row"]["device"].startswith("cpu ")   # where the stream was coded
    x264 = result_of(sweep, X264_JOB)
    (segment,) = x264["segments"]   # frames 2, intra period 2: one GOP, one stream
    stream = sweep / "bitstreams" / X264_JOB / "seg00.264"
    assert segment["sha256"] == sha256(stream.read_bytes())
    # Each frame's hash is that of its Y, U and V bytes as the decoder writes them (8-bit 4:2:0 here).
    raw = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(stream), "-f", "rawvideo", "-pix_fmt", "yuv420p",
                          "-"], capture_output=True, check=True).stdout
    size = W * H * 3 // 2
    assert len(raw) == FRAMES * size
    assert x264["per_frame"]["recon_sha256"] == [sha256(raw[i * size:(i + 1) * size]) for i in range(FRAMES)]


def test_every_stream_matches_in_a_fresh_process(results):
    """A new process, as on another machine (the same CPU settings: MKL_CBWR of conftest, one thread from the sweep's
    config), decodes every stream to the frames the sweep's encoder reconstructed."""
    report = results.parent / "report.json"
    done = subprocess.run([sys.executable, "run_bench.py", "verify-streams", str(results), "--json", str(report)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    code, text, doc = done.returncode, done.stdout, json.loads(report.read_text())
    assert code == 0, text + done.stderr
    assert ("verify-streams: 3 match, 0 mismatch, 0 missing, 0 failed, 0 without manifest, of 3 jobs with streams "
            "(0 done jobs wrote none: HyTIP estimated rates)") in text
    assert "decoded on: cpu " in text and f"torch {torch.__version__} (HyTIP;" in text
    coded_on = result_of(results, X264_JOB)["row"]["device"]
    assert f"coded on: {coded_on}; torch {torch.__version__} (3 jobs)" in text
    jobs = by_job(doc)
    assert sorted(jobs) == sorted((*HYTIP_JOBS, X264_JOB))
    assert doc["summary"] == {"match": 3, "mismatch": 0, "missing": 0, "failed": 0, "no manifest": 0}
    for job in HYTIP_JOBS:
        assert jobs[job]["status"] == "match" and jobs[job]["stream_changed"] is False
        assert jobs[job]["detail"] == "stream sha256 and 2 decoded frames equal the manifest"
        # The copy's own stream, not the path its record names.
        assert jobs[job]["streams"] == [str(results / "bitstreams" / job / "sequence.hytip")]
    assert jobs[X264_JOB]["codec"] == "x264" and jobs[X264_JOB]["status"] == "match"


def frame_holding(stream, offset: int) -> int:
    """The display number of the frame whose record holds byte `offset` (HyTIP codes in display order)."""
    header, records = bs.read(stream)
    end = len(bs.pack_header(header))
    for index, record in enumerate(records):
        end += len(bs.pack_frame(header, index, record))
        if offset < end:
            return index + 1
    raise AssertionError(f"offset {offset} is past the stream")


def test_a_corrupted_stream_is_reported_with_its_frame(results, capsys):
    job = HYTIP_JOBS[1]
    stream = results / "bitstreams" / job / "sequence.hytip"
    data = bytearray(stream.read_bytes())
    middle = len(data) // 2
    frame = frame_holding(stream, middle)
    data[middle] ^= 0xFF
    stream.write_bytes(data)
    code, text, doc = verify(results, capsys)
    assert code == 1
    assert "2 match, 0 mismatch, 0 missing, 1 failed, 0 without manifest" in text
    verdict = by_job(doc)[job]
    assert verdict["status"] == "failed" and verdict["stream_changed"] is True
    assert verdict["failed_at_frame"] == frame
    assert verdict["detail"].startswith(f"stream sha256 differs from the manifest; decoding failed at frame {frame}: ")
    assert "checksum mismatch" in verdict["detail"]
    assert by_job(doc)[HYTIP_JOBS[0]]["status"] == by_job(doc)[X264_JOB]["status"] == "match"
    assert "intact streams whose frames differ" not in text


def test_frames_that_decode_otherwise_are_a_mismatch_from_their_first(results, capsys):
    """A manifest whose second frame another device reconstructed differently: the stream is the same, frame 2
    differs."""
    def other_second_frame(result):
        result["per_frame"]["recon_sha256"][1] = "0" * 64

    for job in (HYTIP_JOBS[0], X264_JOB):
        edit_record(results, job, other_second_frame)
    code, text, doc = verify(results, capsys)
    assert code == 1 and "1 match, 2 mismatch, 0 missing, 0 failed" in text
    assert "intact streams whose frames differ: the decoder computes otherwise here (device, CPU threads" in text
    for job in (HYTIP_JOBS[0], X264_JOB):
        verdict = by_job(doc)[job]
        assert verdict["status"] == "mismatch" and verdict["stream_changed"] is False
        assert verdict["first_differing_frame"] == 2
        assert verdict["detail"] == "frame 2 differs first (1 of 2 decoded frames differ)"


def test_a_missing_stream_and_a_record_without_manifest(results, capsys):
    (results / "bitstreams" / X264_JOB / "seg00.264").unlink()

    def before_manifests(result):
        del result["bitstream_sha256"], result["per_frame"]["recon_sha256"]

    edit_record(results, HYTIP_JOBS[0], before_manifests)
    code, text, doc = verify(results, capsys)
    assert code == 1
    assert "1 match, 0 mismatch, 1 missing, 0 failed, 1 without manifest, of 3 jobs with streams" in text
    jobs = by_job(doc)
    assert jobs[X264_JOB]["status"] == "missing"
    assert jobs[X264_JOB]["detail"] == \
        f"1 of 1 segment stream(s) not found: {results / 'bitstreams' / X264_JOB / 'seg00.264'}"
    assert jobs[HYTIP_JOBS[0]]["status"] == "no manifest" and jobs[HYTIP_JOBS[0]]["stream_changed"] is None
    assert "delete its record (records/" + HYTIP_JOBS[0] + ".json) and rerun" in jobs[HYTIP_JOBS[0]]["detail"]
    assert re.search(rf"^{HYTIP_JOBS[0]} +HyTIP golden  no manifest  recorded before streams had a manifest",
                     text, re.MULTILINE)


def test_bad_input_is_a_clear_error(results, tmp_path, capsys):
    assert main(["verify-streams", str(tmp_path / "nowhere")]) == 2
    assert f"error: {tmp_path / 'nowhere'}: not a sweep folder (no records/ inside" in capsys.readouterr().err
    other = tmp_path / "other.pth.tar"
    other.write_bytes(b"not the checkpoint")
    assert main(["verify-streams", str(results), "--checkpoint", f"golden={other}"]) == 2
    coded_with = sha256(golden.golden_checkpoint_path().read_bytes())
    assert f"error: HyTIP golden: checkpoint {other} has sha256 {sha256(b'not the checkpoint')}, job {HYTIP_JOBS[0]} " \
           f"was coded with {coded_with}; give --checkpoint golden=PATH of that file" in capsys.readouterr().err
    assert main(["verify-streams", str(results), "--device", "gpu"]) == 2
    assert "--device 'gpu': expected cpu, cuda or cuda:N" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(["verify-streams", str(results), "--device", "cuda"]) == 2
        assert "--device cuda: this machine has 0 CUDA device(s)" in capsys.readouterr().err
