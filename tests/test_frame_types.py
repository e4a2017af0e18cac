"""Frame-type BD-rate (bench.analysis.frame_types, `bdrate --frame-type`) and the per-frame bits it reads: hand-made
records with known I/P/all values, the results table's own rows as "all", refused records, real x264/x265 packet
sizes, VTM's per-picture log lines, and `run_bench.py anchors` + `bdrate --frame-type` end to end on a tiny clip."""
import argparse
import json
import re
import warnings
from pathlib import Path

import bjontegaard
import numpy as np
import pandas as pd
import pytest
from anchor_helpers import TINY, tiny_clip

from bench.analysis.bdrate import OverlapWarning, bd_rate, bd_tables
from bench.analysis.frame_types import frame_type_rd, frame_type_tables
from bench.analysis.rd_schema import RD_COLUMNS, RESULT_COLUMNS, load_bd_table_csv, load_rd_csv, write_rd_csv
from bench.cli import anchors as anchors_cli
from bench.cli import bdrate as bdrate_cli
from bench.codecs.base import SourceSpec, summarise
from bench.codecs.encoders import VTM, EncoderFailed, FrameSizesUnknown, RawVideo, make_encoder
from bench.errors import InputError

# ------------------------------------------------------------------------------------------------ hand-made records
# 8 frames, intra period 4, a scene cut at frame 3: I P I P | I P P P, GOPs 0 0 0 0 1 1 1 1.
W, H, FRAMES, PERIOD, CUTS = 64, 32, 8, 4, (3,)
TYPES = ["I", "P", "I", "P", "I", "P", "P", "P"]
BASE_BITS = [6000, 800, 5000, 900, 7000, 700, 750, 650]       # even P sizes: halving keeps whole bits
BASE_PSNR = [36.0, 34.0, 35.5, 33.5, 37.2, 34.5, 34.1, 33.0]
SCALE = [1, 2, 3, 5]                                           # rate points qp37 .. qp22: more bits, +2.5 dB each
POINTS = ["qp37", "qp32", "qp27", "qp22"]
SOURCE = SourceSpec("synthetic", "seq", "unused.yuv", W, H, "yuv420p", 25.0, 8, False, FRAMES, PERIOD, CUTS)


def _frames(k: int, p_factor: float = 1.0):
    bits = [int(b * SCALE[k] * (p_factor if t == "P" else 1)) for b, t in zip(BASE_BITS, TYPES)]
    return bits, [q + 2.5 * k for q in BASE_PSNR]


def _write_sweep(folder: Path, codec: str, p_factor: float = 1.0, overhead: int = 0) -> Path:
    """A sweep folder as `run_bench.py run` leaves it: records/<job>.json and results.csv built from their rows, with
    the table's values made as the codecs make them (bits / pixels, base.summarise)."""
    (folder / "records").mkdir(parents=True)
    rows = []
    for k, point in enumerate(POINTS):
        bits, psnr = _frames(k, p_factor)
        per_frame = {"number": list(range(1, FRAMES + 1)), "type": TYPES, "bits": bits, "psnr_rgb": psnr}
        total = sum(bits) + overhead     # overhead: a container's bytes outside the frames (HyTIP's real streams)
        job = f"{codec}__{point}"
        row = {c: None for c in RD_COLUMNS + RESULT_COLUMNS}
        row.update(codec=codec, codec_version="1", codec_config="cfg", dataset="synthetic", sequence="seq",
                   color_transform="BT709", frames=FRAMES, intra_period=PERIOD, crop="centre-64", width=W, height=H,
                   input_format="yuv420p", color_matrix="bt709", color_range="limited", color_filter="nearest",
                   rate_point=point, bpp=total / (W * H * FRAMES), kbps=total * 25 / FRAMES / 1000, yuv_weights="",
                   source=f"hytip-bench run records/{job}.json", job=job, config_sha256=f"cfg-{job}",
                   **{m: v for m, v in summarise(per_frame, SOURCE).items() if m in row})
        result = {"bits": total, "frames": FRAMES, "width": W, "height": H, "intra_period": PERIOD,
                  "scene_cuts": list(CUTS), "per_frame": per_frame, "row": row}
        record = {"status": "done", "key": job, "config": f"cfg-{job}", "result": result}
        (folder / "records" / f"{job}.json").write_text(json.dumps(record))
        rows.append(row)
    write_rd_csv(pd.DataFrame(rows), folder / "results.csv")
    return folder / "results.csv"


@pytest.fixture
def sweeps(tmp_path):
    """Anchor A and test T, T being A with every P-frame's bits halved at the same quality."""
    return [_write_sweep(tmp_path / "a", "A"), _write_sweep(tmp_path / "t", "T", p_factor=0.5)]


def _rd(paths):
    return pd.concat([load_rd_csv(p) for p in paths], ignore_index=True)


def _hand_points(p_factor: float):
    """bpp and PSNR-RGB of I, P and all frames per rate point, by hand: the GOP means, then their mean."""
    out = {t: ([], []) for t in ("I", "P", "all")}
    for k in range(len(POINTS)):
        bits, psnr = _frames(k, p_factor)
        for t, frames in (("I", [0, 2, 4]), ("P", [1, 3, 5, 6, 7]), ("all", range(8))):
            gops = [[q for i, q in enumerate(psnr) if i in frames and i // PERIOD == g] for g in (0, 1)]
            out[t][0].append(sum(bits[i] for i in frames) / (W * H * len(frames)))
            out[t][1].append(np.mean([np.mean(g) for g in gops]))
    return out


def test_points_follow_the_gop_then_sequence_rule(sweeps):
    points = frame_type_rd(_rd(sweeps[:1]))
    hand = _hand_points(1.0)
    for frame_type in ("I", "P", "all"):
        got = points[points["frame_type"] == frame_type].sort_values("bpp")
        np.testing.assert_allclose(got["bpp"], hand[frame_type][0], rtol=1e-12)
        np.testing.assert_allclose(got["psnr_rgb"], hand[frame_type][1], rtol=1e-12)
    # The I-frames of GOP 0 (frames 1 and 3, a scene cut) are averaged before GOP 1's: not the plain mean of the three.
    i_first = points[(points["frame_type"] == "I") & (points["rate_point"] == "qp37")]["psnr_rgb"].item()
    assert i_first == pytest.approx(((36.0 + 35.5) / 2 + 37.2) / 2) and i_first != pytest.approx((36 + 35.5 + 37.2) / 3)
    # kbps scales with the type's bits per frame: I-frames 18000 bits / 3 frames at 25 fps.
    assert points[(points["frame_type"] == "I") & (points["rate_point"] == "qp37")]["kbps"].item() == \
        pytest.approx(18000 / 3 * 25 / 1000)


def test_halved_p_frames_give_minus_50_percent_on_p_and_0_on_i(sweeps):
    # Halving P's rate moves its curve along log rate: its BD-quality covers part of the anchor's range, and says so.
    with pytest.warns(OverlapWarning, match=r"BD-quality .*records/T__qp37.json, P-frames only"):
        tables = frame_type_tables(_rd(sweeps), ["I", "P", "all"], lambda rd: bd_tables(rd, "A", ["psnr_rgb"]))
    value = tables.datasets.set_index(["frame_type", "dataset"])["bd_rate_pct"]
    assert value["P", "synthetic"] == pytest.approx(-50.0, abs=1e-9)
    assert value["I", "synthetic"] == pytest.approx(0.0, abs=1e-9)
    anchor, test = _hand_points(1.0)["all"], _hand_points(0.5)["all"]
    expected = bjontegaard.bd_rate(*anchor, *test, method="pchip", require_matching_points=False)
    assert value["all", "synthetic"] == pytest.approx(expected, abs=1e-6)
    assert value["all", "synthetic"] == pytest.approx(bd_rate(*anchor, *test), abs=1e-9)
    assert -50 < value["all", "synthetic"] < -5   # P-frames hold about a sixth of the bits
    # The per-dataset rows say their frame type in the protocol text, so one BD table CSV holds all three.
    assert sorted(p.rsplit("; ", 1)[1] for p in tables.datasets["protocol"].unique()) == \
        ["I-frames only", "P-frames only", "all frames"]
    assert set(tables.sequences["frame_type"]) == {"I", "P", "all"}


def test_the_report_shows_i_p_and_all_frames_from_the_records_and_names_what_has_none(sweeps, tmp_path):
    from reports.build import ReportOptions, build_report
    from reports.inputs import read_inputs

    other = tmp_path / "no_records.csv"      # a codec's points without records: in the main tables, not in this view
    table = load_rd_csv(sweeps[1]).drop(columns=["file", "where"])
    write_rd_csv(table.assign(codec="U", job=None, source="by hand"), other)
    html = build_report(read_inputs([sweeps[0].parent, sweeps[1].parent, other]), tmp_path / "report",
                        ReportOptions(anchor="A")).read_text()
    view = pd.read_csv(tmp_path / "report/tables/bd_rate_frame_types_psnr-rgb-bt709.csv", index_col=0)
    assert list(view.index) == ["T-1, I-frames only", "T-1, P-frames only", "T-1, all frames"]
    assert view.loc["T-1, P-frames only", "synthetic"] == pytest.approx(-50.0, abs=1e-9)
    assert view.loc["T-1, I-frames only", "synthetic"] == pytest.approx(0.0, abs=1e-9)
    main = pd.read_csv(tmp_path / "report/tables/bd_rate_psnr-rgb-bt709.csv", index_col=0)
    assert view.loc["T-1, all frames", "synthetic"] == pytest.approx(main.loc["synthetic", "T-1"], abs=1e-12)
    assert 'id="frame-types"' in html and "no per-frame records among the inputs: U-1" in html


def test_all_frames_equal_the_results_table_with_container_overhead_on_the_first_frame(tmp_path):
    table = _write_sweep(tmp_path / "h", "H", overhead=1296)
    rd = load_rd_csv(table)
    points = frame_type_rd(rd, ["all", "I"])
    every = points[points["frame_type"] == "all"].reset_index(drop=True)
    for column in ("bpp", "kbps", "psnr_rgb"):
        assert (every[column].to_numpy() == rd[column].to_numpy()).all(), column
    intra = points[points["frame_type"] == "I"].sort_values("bpp")
    np.testing.assert_allclose(intra["bpp"], [(18000 * s + 1296) / (W * H * 3) for s in SCALE], rtol=1e-12)


def test_a_stale_table_is_refused(tmp_path):
    table = _write_sweep(tmp_path / "s", "S")
    frame = load_rd_csv(table)
    frame.loc[frame["rate_point"] == "qp37", "bpp"] *= 1.5   # the first point's bpp no longer matches its record
    write_rd_csv(frame, table)
    with pytest.raises(InputError, match=r"results.csv: line 2: bpp differ from the record .*S__qp37.json.*stale"):
        frame_type_rd(load_rd_csv(table))


def test_a_record_without_per_frame_bits_is_an_error_naming_it(tmp_path):
    table = _write_sweep(tmp_path / "old", "O")
    path = tmp_path / "old" / "records" / "O__qp27.json"
    record = json.loads(path.read_text())
    del record["result"]["per_frame"]["bits"]
    path.write_text(json.dumps(record))
    with pytest.raises(InputError, match=re.escape(str(path)) + r": no per-frame bits .*rerun this job "
                                         r"\(`run_bench.py run ... --force`, or delete the record"):
        frame_type_rd(load_rd_csv(table))
    # An encoder that could not give them (a VTM log without per-picture lines) is named with its reason.
    record["result"]["frame_bits_unknown"] = "seg00.encode.log: VTM EncoderApp printed no per-picture lines"
    path.write_text(json.dumps(record))
    with pytest.raises(InputError, match=r"O__qp27.json: no per-frame bits: seg00.encode.log: VTM EncoderApp"):
        frame_type_rd(load_rd_csv(table))


def test_a_table_without_records_works_for_all_frames_only(tmp_path):
    table = _write_sweep(tmp_path / "p", "A")
    published = tmp_path / "published.csv"
    frame = load_rd_csv(table).drop(columns=list(RESULT_COLUMNS), errors="ignore").assign(source="DCVC paper")
    write_rd_csv(frame, published)
    with pytest.raises(InputError, match=r"published.csv: line 2: A-1 names no job \(source 'DCVC paper'\): it is "
                                         r"not a sweep result.*only --frame-type all works"):
        frame_type_rd(load_rd_csv(published), ["I"])


# ------------------------------------------------------------------------------------------------ per-frame bits
@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tiny_clip(tmp_path_factory.mktemp("clip") / "tiny.yuv")
    return RawVideo(path, TINY["width"], TINY["height"], "yuv420p", 6, TINY["fps"])


def test_x264_packet_sizes_add_up_to_the_file_and_match_x264s_own_report(clip, tmp_path):
    enc = make_encoder("x264")
    coded = enc.encode(clip, 27, tmp_path / "s.264", tmp_path / "s.encode.log")
    bits = enc.frame_bits(coded.bitstream, coded.log)
    assert len(bits) == 6 and sum(bits) == 8 * coded.bitstream.stat().st_size == coded.bits
    assert (tmp_path / "s.encode.packets.log").read_text().startswith("$ ")
    # x264's summary counts each frame's NAL units, in-band headers included: the same split.
    log = coded.log.read_text()
    i_size = int(re.search(r"frame I:1\s+Avg QP:\s*[\d.]+\s+size:\s*(\d+)", log).group(1))
    p_size = int(re.search(r"frame P:5\s+Avg QP:\s*[\d.]+\s+size:\s*(\d+)", log).group(1))
    assert bits[0] == 8 * i_size and round(np.mean(bits[1:]) / 8) == p_size


def test_x265_packet_sizes_add_up_to_the_file(clip, tmp_path):
    enc = make_encoder("x265")
    coded = enc.encode(clip, 27, tmp_path / "s.265", tmp_path / "s.encode.log")
    bits = enc.frame_bits(coded.bitstream, coded.log)
    assert len(bits) == 6 and sum(bits) == 8 * coded.bitstream.stat().st_size == coded.bits
    assert bits[0] > max(bits[1:])
    # x265's summary leaves out start codes (4 bytes per NAL unit) and the first frame's parameter sets and SEI.
    p_rate = float(re.search(r"frame P:\s+5, Avg QP:\s*[\d.]+\s+kb/s:\s*([\d.]+)", coded.log.read_text()).group(1))
    assert 0 <= np.mean(bits[1:]) - p_rate * 1000 / TINY["fps"] <= 8 * 4 + 1


@pytest.mark.parametrize("name", ["svtav1", "vvenc"])
def test_av1_and_vvc_packet_sizes_add_up_to_the_file(name, clip, tmp_path):
    enc = make_encoder(name)
    src = clip
    if enc.input_format("420", 8) != clip.pix_fmt:   # VVenC takes 10-bit input only
        src = clip.with_path(tmp_path / "tiny10.yuv", "yuv420p10le")
        (np.fromfile(clip.path, np.uint8).astype("<u2") << 2).tofile(src.path)
    coded = enc.encode(src, max(enc.default_rates), tmp_path / f"s{enc.suffix}", tmp_path / "s.encode.log")
    bits = enc.frame_bits(coded.bitstream, coded.log)
    assert len(bits) == 6 and sum(bits) == coded.bits and bits[0] > max(bits[1:])


VTM_LOG = """VVCSoftware: VTM Encoder Version 17.0 [Linux][GCC 12.2.0][64 bit] [SIMD=AVX2]
POC    0 LId:  0 TId: 0 ( IDR_N_LP, I-SLICE, QP 21 )       8328 bits [Y 45.1470 dB    U 48.2602 dB    V 50.6591 dB] [ET     4 ] [L0] [L1]
POC    2 LId:  0 TId: 0 ( TRAIL, B-SLICE, QP 26 )        664 bits [Y 43.2648 dB    U 47.2148 dB    V 49.3809 dB] [ET     1 ] [L0 1 0] [L1 1c 0]
POC    1 LId:  0 TId: 0 ( TRAIL, B-SLICE, QP 28 )        296 bits [Y 43.6352 dB    U 47.6801 dB    V 49.2431 dB] [ET     1 ] [L0 0] [L1 0c]
"""


def test_vtm_per_picture_bits_in_poc_order_with_the_rest_of_the_file_on_the_i_frame(tmp_path):
    log, stream = tmp_path / "enc.log", tmp_path / "s.bin"
    log.write_text(VTM_LOG)
    stream.write_bytes(bytes(1200))     # 9600 bits: 312 more than the pictures' 9288 (start codes, SEI)
    assert VTM().frame_bits(stream, log) == [8328 + 312, 296, 664]
    stream.write_bytes(bytes(1000))
    with pytest.raises(EncoderFailed, match=r"enc.log: per-frame sizes of .*s.bin add up to 9288 bits over 3 frames; "
                                            r"the stream has 8000"):
        VTM().frame_bits(stream, log)
    log.write_text(VTM_LOG.splitlines()[0] + "\n")
    with pytest.raises(FrameSizesUnknown, match=r"enc.log: VTM EncoderApp printed no per-picture 'POC ... bits'"):
        VTM().frame_bits(stream, log)
    log.write_text(VTM_LOG + VTM_LOG.splitlines()[2] + "\n")
    with pytest.raises(EncoderFailed, match=r"enc.log: POC 2 is reported twice"):
        VTM().frame_bits(stream, log)


# ------------------------------------------------------------------------------------------------ end to end
def _cli(module, argv):
    parser = argparse.ArgumentParser()
    module.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


def test_anchors_then_bdrate_by_frame_type(clip, tmp_path, capsys):
    out = tmp_path / "run"
    assert _cli(anchors_cli, ["anchors", "--input", str(clip.path), "--width", "128", "--height", "64", "--pix-fmt",
                              "yuv420p", "--fps", "25", "--name", "tiny", "--frames", "6", "--intra-period", "3",
                              "--out", str(out), "--no-progress", "--encoders", "x264", "x265", "--rates", "22", "27",
                              "32", "37", "--jobs", "2"]) == 0
    for record in (out / "records").glob("*.json"):
        result = json.loads(record.read_text())["result"]
        bits = result["per_frame"]["bits"]
        assert [sum(bits[:3]), sum(bits[3:])] == [8 * Path(s["bitstream"]).stat().st_size for s in result["segments"]]
    table = load_rd_csv(out / "anchors.csv")
    every = frame_type_rd(table, ["all"])
    for column in ("bpp", "kbps", "psnr_rgb", "psnr_y", "psnr_yuv"):
        assert (every[column].to_numpy() == table[column].to_numpy()).all(), column
    capsys.readouterr()
    assert _cli(bdrate_cli, ["bdrate", str(out / "anchors.csv"), "--anchor", "x264", "--metric", "psnr_y",
                             "--frame-type", "I", "P", "all", "-o", str(tmp_path / "bd.csv"),
                             "--per-sequence", str(tmp_path / "seq.csv")]) == 0
    printed = capsys.readouterr().out
    for text in ("I-frames only", "P-frames only", "all frames"):
        assert f"psnr_y, colour transform BT601, {text} (BD-rate %" in printed
    written = load_bd_table_csv(tmp_path / "bd.csv")
    assert len(written) == 3 * 2        # three frame types x (dataset, Average)
    # "all" is the plain bdrate of the table.
    with warnings.catch_warnings():   # the tiny clip's x264 and x265 curves may hardly overlap along log rate
        warnings.simplefilter("ignore", OverlapWarning)
        plain = bd_tables(table, "x264", ["psnr_y"]).datasets
    by_type = written.set_index(written["protocol"].str.rsplit("; ", n=1).str[1])
    assert by_type.loc["all frames", "bd_rate_pct"].tolist() == pytest.approx(plain["bd_rate_pct"].tolist())
    assert set(pd.read_csv(tmp_path / "seq.csv")["frame_type"]) == {"I", "P", "all"}
