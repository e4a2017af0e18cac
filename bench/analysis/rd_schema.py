"""Anchor and result CSVs: the RD-point schema, the BD-rate table schema, validation, and DCVC/CompressAI JSON.

Both schemas are documented column by column in anchors/README.md. Every loader validates what it reads and
raises ``InputError`` naming the file, the line (or JSON key path) and the problem. A loaded RD frame carries two
extra columns, ``file`` and ``where``, so later errors (too few points for BD, a missing anchor sequence) can point
back at the input.
"""
from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from bench.errors import InputError

PROTOCOL_COLUMNS = ("frames", "intra_period", "crop", "width", "height", "input_format", "color_matrix", "color_range",
                    "color_filter")
CURVE_KEY = ("codec", "codec_version", "codec_config", "dataset", "sequence", "color_transform") + PROTOCOL_COLUMNS
RATE_COLUMNS = ("bpp", "kbps")
RD_QUALITY_COLUMNS = ("psnr_rgb", "msssim_rgb", "psnr_y", "psnr_u", "psnr_v", "psnr_yuv",
                      "msssim_y", "msssim_u", "msssim_v", "msssim_yuv")
RD_COLUMNS = CURVE_KEY + ("rate_point",) + RATE_COLUMNS + RD_QUALITY_COLUMNS + ("yuv_weights", "source")
# VMAF and XPSNR (bench.measure.video_metrics), measured when a sweep asks for them: quality columns like the others,
# but optional in a file (result columns), as every file written before them lacks them; a loaded frame always has
# them, blank where not measured.
VIDEO_QUALITY_COLUMNS = ("vmaf", "xpsnr_y", "xpsnr_u", "xpsnr_v", "xpsnr")
QUALITY_COLUMNS = RD_QUALITY_COLUMNS + VIDEO_QUALITY_COLUMNS
# Quality columns a BD value is computed on; they must rise with rate. Single chroma planes need not (a codec may
# trade chroma for luma between rate points), so they are not checked. The schema's are checked when a file is read;
# VMAF and XPSNR only when a BD value is asked of them (VMAF saturates at 100, where the best points of a curve tie).
RISING_ON_LOAD = ("psnr_rgb", "msssim_rgb", "psnr_y", "psnr_yuv", "msssim_yuv")
BD_METRICS = RISING_ON_LOAD + ("vmaf", "xpsnr")
INT_COLUMNS = ("frames", "intra_period", "width", "height")
TEXT_COLUMNS = tuple(c for c in RD_COLUMNS if c not in INT_COLUMNS + RATE_COLUMNS + QUALITY_COLUMNS)
OPTIONAL_TEXT = ("yuv_weights",)
# Optional columns of the sweep's results table (`run_bench.py run`): a results table is an RD CSV with these added, so
# `bdrate` and the reports read it unchanged. Documented in anchors/README.md ("Results columns").
RESULT_INT_COLUMNS = ("i_quality", "qp", "rate_point_batch")
RESULT_FLOAT_COLUMNS = ("psnr_rgb_from_mse", "psnr_y_from_mse", "psnr_u_from_mse", "psnr_v_from_mse",
                        "psnr_yuv_from_mse", "enc_seconds", "dec_seconds", "input_wait_seconds")
RESULT_TEXT_COLUMNS = ("model", "rate_mode", "decode_check", "averaging", "scene_cuts", "job", "config_sha256",
                       "project_version", "git_commit", "checkpoint_sha256", "torch_version", "cuda_version",
                       "cudnn_version", "device", "threads", "codec_command", "rate_selection",
                       "video_metrics_protocol")
RESULT_COLUMNS = VIDEO_QUALITY_COLUMNS + RESULT_INT_COLUMNS + RESULT_FLOAT_COLUMNS + RESULT_TEXT_COLUMNS
# The sequence name of a curve that a source publishes only as a dataset mean.
DATASET_MEAN = "avg"

BD_TABLE_COLUMNS = ("codec", "anchor", "dataset", "color_transform", "metric", "bd_rate_pct", "bd_quality",
                    "method", "averaging", "sequences", "protocol", "release", "source")
BD_TABLE_KEY = ("codec", "anchor", "dataset", "color_transform", "metric", "method", "averaging", "protocol", "release")
BD_TABLE_TEXT = tuple(c for c in BD_TABLE_COLUMNS if c not in ("bd_rate_pct", "bd_quality", "sequences"))
# Optional: a BD-rate's interval and its parts (bench.analysis.intervals), and how they were made.
BD_INTERVAL_COLUMNS = tuple(f"{part}_{bound}" for part in ("bd_rate", "interpolation", "method", "sampling")
                            for bound in ("low", "high"))
BD_TABLE_OPTIONAL = BD_INTERVAL_COLUMNS + ("interval",)

_YUV_WEIGHTS = re.compile(r"^\d+:\d+:\d+$")


# ---------------------------------------------------------------- RD points
def load_rd_csv(path, *, check_curves: bool = True) -> pd.DataFrame:
    """Read and validate one RD CSV in the anchor schema (optionally with the result columns); `check_curves` off
    accepts curves that do not rise with rate (a report notes them; BD-rate refuses them)."""
    return rd_frame(_read_csv(path, RD_COLUMNS, RESULT_COLUMNS), str(path), check_curves=check_curves)


def load_rd_csvs(paths: Iterable) -> pd.DataFrame:
    """Read several RD CSVs; a point defined in two files is an error naming both."""
    frames = [load_rd_csv(p) for p in paths]
    if not frames:
        raise InputError("no RD CSV given")
    combined = pd.concat(frames, ignore_index=True)
    check_duplicates(combined)
    return combined


def write_rd_csv(frame: pd.DataFrame, path, *, check_curves: bool = True) -> None:
    """Validate a frame against the RD schema and write it (blank for a missing value). `check_curves` off: curves
    need not rise with rate (measured results are written as they are; BD-rate refuses such curves on loading)."""
    records = frame.to_dict("records")
    checked = rd_frame(records, str(path), [r.get("where", f"row {i + 1}") for i, r in enumerate(records)],
                        check_curves=check_curves)
    columns = list(RD_COLUMNS) + [c for c in RESULT_COLUMNS if c in checked]
    checked.loc[:, columns].to_csv(path, index=False, na_rep="", float_format=None)


def _read_csv(path, columns, optional=()) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise InputError(f"{path}: line 1: empty file, expected a header with {', '.join(columns)}")
        header = [h.strip() for h in header]
        missing = [c for c in columns if c not in header]
        unknown = [c for c in header if c not in columns and c not in optional]
        if missing or unknown:
            problems = []
            if missing:
                problems.append(f"missing column(s) {', '.join(missing)}")
            if unknown:
                problems.append(f"unknown column(s) {', '.join(unknown)}")
            raise InputError(f"{path}: line 1: {'; '.join(problems)} (schema: anchors/README.md)")
        rows = []
        for values in reader:
            if not values or all(not v.strip() for v in values):
                continue
            if len(values) != len(header):
                raise InputError(f"{path}: line {reader.line_num}: expected {len(header)} fields, found {len(values)}")
            row = {h: v.strip() for h, v in zip(header, values)}
            row["where"] = f"line {reader.line_num}"
            rows.append(row)
    return rows


def _blank(value) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return value is pd.NA or (isinstance(value, str) and value.strip() == "")


def _number(value, column, file, where, integer=False):
    if _blank(value):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{file}: {where}: column {column}: expected a number, found {value!r}") from None
    if not math.isfinite(number):
        raise InputError(f"{file}: {where}: column {column}: expected a finite number, found {value!r}")
    if integer:
        if number != int(number):
            raise InputError(f"{file}: {where}: column {column}: expected an integer, found {value!r}")
        return int(number)
    return number


def _check_range(number, column, file, where):
    if number is None:
        return
    if column == "intra_period":
        ok, expected = number == -1 or number > 0, "-1 (one intra frame) or a positive period"
    elif column.startswith("msssim"):
        ok, expected = 0 < number <= 1, "a value in (0, 1]"
    elif column == "vmaf":
        ok, expected = 0 <= number <= 100, "a value in [0, 100]"
    else:
        ok, expected = number > 0, "a positive value"
    if not ok:
        raise InputError(f"{file}: {where}: column {column}: expected {expected}, found {number}")


def rd_frame(records: list[Mapping], file: str, wheres: list[str] | None = None, *,
              check_curves: bool = True) -> pd.DataFrame:
    parsed = []
    for i, record in enumerate(records):
        where = wheres[i] if wheres is not None else record.get("where", f"row {i + 1}")
        row = {"file": file, "where": where}
        for column in TEXT_COLUMNS:
            value = record.get(column)
            text = "" if _blank(value) else str(value).strip()
            if not text and column not in OPTIONAL_TEXT:
                raise InputError(f"{file}: {where}: column {column} is empty (write 'unknown' if the source does not say)")
            row[column] = text
        for column in INT_COLUMNS:
            row[column] = _number(record.get(column), column, file, where, integer=True)
            _check_range(row[column], column, file, where)
        for column in RATE_COLUMNS + QUALITY_COLUMNS:
            row[column] = _number(record.get(column), column, file, where)
            _check_range(row[column], column, file, where)
        for column in RESULT_COLUMNS:
            if column in record and column not in QUALITY_COLUMNS:
                value = record[column]
                if column in RESULT_TEXT_COLUMNS:
                    row[column] = "" if _blank(value) else str(value).strip()
                else:
                    row[column] = _number(value, column, file, where, integer=column in RESULT_INT_COLUMNS)
        if row["bpp"] is None and row["kbps"] is None:
            raise InputError(f"{file}: {where}: neither bpp nor kbps is given")
        has_yuv = row["psnr_yuv"] is not None or row["msssim_yuv"] is not None
        if has_yuv and not _YUV_WEIGHTS.match(row["yuv_weights"]):
            raise InputError(f"{file}: {where}: column yuv_weights: expected Y:U:V weights such as 6:1:1 for "
                             f"psnr_yuv/msssim_yuv, found {row['yuv_weights']!r}")
        parsed.append(row)
    extra = [c for c in RESULT_COLUMNS if any(c in row for row in parsed)]
    frame = pd.DataFrame(parsed, columns=["file", "where"] + list(RD_COLUMNS) + extra)
    for column in INT_COLUMNS + tuple(c for c in RESULT_INT_COLUMNS if c in extra):
        frame[column] = frame[column].astype("Int64")
    for column in RATE_COLUMNS + QUALITY_COLUMNS + tuple(c for c in RESULT_FLOAT_COLUMNS if c in extra):
        frame[column] = frame[column].astype(float)
    check_duplicates(frame)
    if check_curves:
        check_curves_rising(frame)
    return frame


def _key_text(key) -> str:
    return "/".join(str(k) for k in key[:6])


def check_duplicates(frame: pd.DataFrame) -> None:
    keyed = frame.loc[:, list(CURVE_KEY) + ["rate_point"]].astype(str)
    dup = keyed.duplicated(keep=False)
    if dup.any():
        first = keyed[dup].iloc[0]
        same = frame[(keyed == first).all(axis=1)]
        places = ", ".join(f"{f} {w}" for f, w in zip(same["file"], same["where"]))
        raise InputError(f"{places}: duplicate rate point {first['rate_point']!r} of curve "
                         f"{_key_text(first.tolist())}")


def check_curves_rising(frame: pd.DataFrame, metrics=RISING_ON_LOAD) -> None:
    """Within a curve: the same columns filled on every point, rates distinct, `metrics` rising with rate."""
    curve = frame.groupby(list(CURVE_KEY), sort=False, dropna=False).ngroup().to_numpy()
    for column in RATE_COLUMNS + QUALITY_COLUMNS:
        filled = frame[column].notna()
        by_curve = filled.groupby(curve)
        partial = (by_curve.transform("any") & ~by_curve.transform("all")).to_numpy()
        if partial.any():
            gaps = frame.loc[partial & ~filled.to_numpy()]
            raise InputError(f"{gaps['file'].iloc[0]}: {', '.join(gaps['where'])}: column {column} is empty on some "
                             f"points of curve {_key_text(gaps[list(CURVE_KEY)].iloc[0].tolist())} but not on others")
    uses_bpp = frame["bpp"].notna().to_numpy()
    rate = np.where(uses_bpp, frame["bpp"].to_numpy(float), frame["kbps"].to_numpy(float))
    order = np.lexsort((rate, curve))
    ordered = frame.iloc[order]
    same_curve = curve[order][1:] == curve[order][:-1]
    rates = rate[order]
    unit = np.where(uses_bpp[order], "bpp", "kbps")

    def fail(i, problem):
        first, second = ordered.iloc[i], ordered.iloc[i + 1]
        raise InputError(f"{first['file']}: {first['where']} and {second['where']}: curve "
                         f"{_key_text(first[list(CURVE_KEY)].tolist())} {problem}")

    repeated = np.flatnonzero(same_curve & (np.diff(rates) <= 0))
    if len(repeated):
        i = repeated[0]
        fail(i, f"has two points with the same {unit[i]} {rates[i]}")
    for column in ("kbps",) + tuple(metrics):
        values = ordered[column].to_numpy(float)
        step = np.diff(values)
        falls = np.flatnonzero(same_curve & (step <= 0) & (column != "kbps" or uses_bpp[order][1:]))
        if len(falls):
            i = falls[0]
            saturated = " (VMAF saturates at 100: leave such points out with --exclude-rate-points)" \
                if column == "vmaf" and values[i + 1] >= 100 else ""
            fail(i, f"is not monotonic: {column} {values[i + 1]} at {unit[i]} {rates[i + 1]} is not above "
                    f"{values[i]} at {unit[i]} {rates[i]}{saturated}")


# ---------------------------------------------------------------- BD-rate tables
def load_bd_table_csv(path) -> pd.DataFrame:
    """Read and validate a table of BD values (published or computed by `run_bench.py bdrate`)."""
    return _bd_table_frame(_read_csv(path, BD_TABLE_COLUMNS, BD_TABLE_OPTIONAL), str(path))


def write_bd_table_csv(frame: pd.DataFrame, path) -> None:
    records = frame.to_dict("records")
    checked = _bd_table_frame(records, str(path), [f"row {i + 1}" for i in range(len(records))])
    columns = list(BD_TABLE_COLUMNS) + [c for c in BD_TABLE_OPTIONAL if c in checked]
    checked.loc[:, columns].to_csv(path, index=False, na_rep="")


def _bd_table_frame(records, file, wheres=None) -> pd.DataFrame:
    parsed = []
    for i, record in enumerate(records):
        where = wheres[i] if wheres is not None else record["where"]
        row = {"file": file, "where": where}
        for column in BD_TABLE_TEXT:
            value = record.get(column)
            row[column] = "" if _blank(value) else str(value).strip()
            if not row[column]:
                raise InputError(f"{file}: {where}: column {column} is empty (write 'not stated' if unknown)")
        row["bd_rate_pct"] = _number(record.get("bd_rate_pct"), "bd_rate_pct", file, where)
        row["bd_quality"] = _number(record.get("bd_quality"), "bd_quality", file, where)
        row["sequences"] = _number(record.get("sequences"), "sequences", file, where, integer=True)
        for column in BD_INTERVAL_COLUMNS:
            if column in record:
                row[column] = _number(record[column], column, file, where)
        if "interval" in record:
            row["interval"] = "" if _blank(record["interval"]) else str(record["interval"]).strip()
        parsed.append(row)
    optional = [c for c in BD_TABLE_OPTIONAL if any(c in row for row in parsed)]
    frame = pd.DataFrame(parsed, columns=["file", "where"] + list(BD_TABLE_COLUMNS) + optional)
    frame["sequences"] = frame["sequences"].astype("Int64")
    numbers = ["bd_rate_pct", "bd_quality"] + [c for c in BD_INTERVAL_COLUMNS if c in frame]
    frame[numbers] = frame[numbers].astype(float)
    keyed = frame.loc[:, list(BD_TABLE_KEY)]
    dup = keyed.duplicated(keep=False)
    if dup.any():
        places = ", ".join(frame.loc[dup, "where"].head(2))
        raise InputError(f"{file}: {places}: duplicate entry for {'/'.join(keyed[dup].iloc[0])}")
    return frame


# ---------------------------------------------------------------- DCVC JSON
_DCVC_METRICS = {
    "rgb": {"psnr": "psnr_rgb", "msssim": "msssim_rgb"},
    "yuv420": {"psnr": "psnr_yuv", "msssim": "msssim_yuv", "psnr_y": "psnr_y", "psnr_u": "psnr_u",
               "psnr_v": "psnr_v", "msssim_y": "msssim_y", "msssim_u": "msssim_u", "msssim_v": "msssim_v"},
}
# DCVC's test_video.py weights YUV420 PSNR and MS-SSIM as (6Y + U + V) / 8.
DCVC_YUV_WEIGHTS = "6:1:1"
_SIZE_IN_NAME = re.compile(r"_(\d+)x(\d+)")


def _load_json(path):
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: line {exc.lineno}: not valid JSON ({exc.msg})") from None


def import_dcvc_json(path, *, codec: str, codec_version: str, codec_config: str, color_transform: str,
                     metric_space: str, intra_period: int | None = None, crop: str = "unknown",
                     width: int | None = None, height: int | None = None, input_format: str = "unknown",
                     color_matrix: str = "unknown", color_range: str = "unknown", color_filter: str = "unknown",
                     dataset_names: Mapping[str, str] | None = None, sequence_names: Mapping[str, str] | None = None,
                     source: str | None = None) -> pd.DataFrame:
    """Read a DCVC result JSON ({dataset: {sequence: {rate key: {...}}}}, as written by DCVC's test_video.py and
    its VTM anchor file) into the RD schema.

    ``metric_space`` says what DCVC's ``psnr``/``msssim`` measured: "rgb" (RGB test) or "yuv420" ((6Y+U+V)/8).
    Frames are i_frame_num + p_frame_num; width and height are taken from a ``_WxH`` in the sequence name when
    their product equals frame_pixel_num, else from the arguments, which must then multiply to it. The rate key
    (DCVC writes "%03d" of the rate index, or the QP for VTM) becomes rate_point. The protocol facts that the JSON
    does not hold are arguments.
    """
    if metric_space not in _DCVC_METRICS:
        raise InputError(f"{path}: metric_space must be one of {', '.join(_DCVC_METRICS)}, found {metric_space!r}")
    data = _load_json(path)
    dataset_names = dataset_names or {}
    sequence_names = sequence_names or {}
    records, wheres = [], []
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected an object {{dataset: {{sequence: {{rate: result}}}}}}")
    for dataset, sequences in data.items():
        for sequence, points in _expect_dict(sequences, path, f"[{dataset}]").items():
            for rate_key, point in _expect_dict(points, path, f"[{dataset}][{sequence}]").items():
                where = f"[{dataset}][{sequence}][{rate_key}]"
                point = _expect_dict(point, path, where)
                record = {
                    "codec": codec, "codec_version": codec_version, "codec_config": codec_config,
                    "dataset": dataset_names.get(dataset, dataset), "sequence": sequence_names.get(sequence, sequence),
                    "color_transform": color_transform, "intra_period": intra_period, "crop": crop,
                    "input_format": input_format, "color_matrix": color_matrix, "color_range": color_range,
                    "color_filter": color_filter, "rate_point": rate_key, "source": f"{source or path} {where}",
                    "frames": _field(point, "i_frame_num", path, where) + _field(point, "p_frame_num", path, where),
                    "bpp": _field(point, "ave_all_frame_bpp", path, where),
                }
                pixels = _field(point, "frame_pixel_num", path, where)
                size = _SIZE_IN_NAME.search(sequence)
                if size and int(size[1]) * int(size[2]) == pixels:
                    record["width"], record["height"] = int(size[1]), int(size[2])
                elif width is not None and height is not None:
                    if width * height != pixels:
                        raise InputError(f"{path}: {where}: frame_pixel_num {pixels} is not width x height "
                                         f"{width}x{height}")
                    record["width"], record["height"] = width, height
                for key, column in _DCVC_METRICS[metric_space].items():
                    if f"ave_all_frame_{key}" in point:
                        record[column] = point[f"ave_all_frame_{key}"]
                if metric_space == "yuv420":
                    record["yuv_weights"] = DCVC_YUV_WEIGHTS
                records.append(record)
                wheres.append(where)
    return rd_frame(records, str(path), wheres)


def _expect_dict(value, path, where) -> dict:
    if not isinstance(value, dict):
        raise InputError(f"{path}: {where}: expected an object, found {type(value).__name__}")
    return value


def _field(point: Mapping, key: str, path, where):
    if key not in point:
        raise InputError(f"{path}: {where}: missing field {key!r}")
    return point[key]


def export_dcvc_json(frame: pd.DataFrame, path, metric_space: str) -> None:
    """Write RD points as a DCVC result JSON that DCVC's compare_bd_rate.py reads.

    The schema has no per-frame-type averages, so, like DCVC's own VTM anchor file, every frame is filed under
    i_frame_* with p_frame_num 0 (compare_bd_rate.py weights sequences by i_frame_num + p_frame_num). Needs frames,
    width and height on every point.
    """
    if metric_space not in _DCVC_METRICS:
        raise InputError(f"{path}: metric_space must be one of {', '.join(_DCVC_METRICS)}, found {metric_space!r}")
    columns = _DCVC_METRICS[metric_space]
    out: dict = {}
    for row in frame.to_dict("records"):
        label = f"{row.get('file', '')} {row.get('where', '')}".strip()
        for needed in ("frames", "width", "height", "bpp"):
            if _blank(row.get(needed)):
                raise InputError(f"{label}: column {needed} is empty; DCVC's JSON needs it ({path})")
        point = {"frame_pixel_num": int(row["width"]) * int(row["height"]),
                 "i_frame_num": int(row["frames"]), "p_frame_num": 0}
        for prefix in ("ave_i_frame", "ave_p_frame", "ave_all_frame"):
            point[f"{prefix}_bpp"] = 0 if prefix == "ave_p_frame" else float(row["bpp"])
            for key, column in columns.items():
                if not _blank(row.get(column)):
                    point[f"{prefix}_{key}"] = 0 if prefix == "ave_p_frame" else float(row[column])
        point["ds_name"], point["seq_name"] = row["dataset"], row["sequence"]
        sequences = out.setdefault(row["dataset"], {}).setdefault(row["sequence"], {})
        sequences[str(row["rate_point"])] = point
    Path(path).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")


# ---------------------------------------------------------------- CompressAI JSON
_COMPRESSAI_METRICS = {"psnr-rgb": "psnr_rgb", "ms-ssim-rgb": "msssim_rgb", "psnr-y": "psnr_y", "psnr-u": "psnr_u",
                       "psnr-v": "psnr_v", "psnr-yuv": "psnr_yuv", "bitrate": "kbps", "bpp": "bpp"}
# compressai.utils.video.eval_model computes psnr-yuv as (4Y + U + V) / 6.
COMPRESSAI_YUV_WEIGHTS = "4:1:1"


def import_compressai_json(path, *, dataset: str, codec_version: str, color_transform: str = "unknown",
                           codec: str | None = None, codec_config: str | None = None, frames: int | None = None,
                           intra_period: int | None = None, crop: str = "unknown", width: int | None = None,
                           height: int | None = None, input_format: str = "unknown", color_matrix: str = "unknown",
                           color_range: str = "unknown", color_filter: str = "unknown",
                           source: str | None = None) -> pd.DataFrame:
    """Read a CompressAI video result JSON ({"name", "description", "results": {metric: [per rate point]}}).

    These files hold dataset means, so the sequence is "avg". ``bitrate`` (kbps) and, when present, ``bpp`` are the
    rates; the rate point label comes from ``qp`` or ``q``, else the index. Codec and configuration default to the
    file's name and description.
    """
    data = _expect_dict(_load_json(path), path, "top level")
    results = _expect_dict(_field(data, "results", path, "top level"), path, "[results]")
    lengths = {key: len(values) for key, values in results.items() if isinstance(values, list)}
    if len(set(lengths.values())) != 1:
        raise InputError(f"{path}: [results]: lists differ in length: {lengths}")
    count = next(iter(lengths.values()))
    labels = results.get("qp", results.get("q", list(range(count))))
    records, wheres = [], []
    for i in range(count):
        where = f"[results][{i}]"
        record = {
            "codec": codec or _field(data, "name", path, "top level"), "codec_version": codec_version,
            "codec_config": codec_config or data.get("description", "unknown"), "dataset": dataset,
            "sequence": DATASET_MEAN, "color_transform": color_transform, "frames": frames,
            "intra_period": intra_period, "crop": crop, "width": width, "height": height,
            "input_format": input_format, "color_matrix": color_matrix, "color_range": color_range,
            "color_filter": color_filter, "rate_point": labels[i], "source": f"{source or path} {where}",
        }
        for key, column in _COMPRESSAI_METRICS.items():
            if key in results:
                record[column] = results[key][i]
        if "psnr-yuv" in results:
            record["yuv_weights"] = COMPRESSAI_YUV_WEIGHTS
        records.append(record)
        wheres.append(where)
    return rd_frame(records, str(path), wheres)
