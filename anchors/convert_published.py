#!/usr/bin/env python3
"""Rebuild the bundled anchor CSVs from the published-number CSVs (provenance in anchors/README.md).

Usage: python anchors/convert_published.py PUBLISHED_DIR   (the folder with the CSVs that SOURCES.md describes)

Every value is copied, never recomputed; what each source leaves unstated is written as "unknown" (or blank for a
number), and names are mapped to the datasets.yaml names (dataset HEVC_B -> HEVC-B, sequence file name -> the
catalogue name). The output is validated by bench.analysis.rd_schema on writing.
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import pandas as pd
import yaml

from bench.analysis.rd_schema import (
    COMPRESSAI_YUV_WEIGHTS,
    DATASET_MEAN,
    DCVC_YUV_WEIGHTS,
    write_bd_table_csv,
    write_rd_csv,
)

HERE = Path(__file__).resolve().parent
DCVC = "microsoft/DCVC@54e88645e1b4edac0694228ab2f44ed8818e345b"
COMPRESSAI = "InterDigitalInc/CompressAI@869a9f5d4126d015b7de8f203fe60ee9e1608193"
HYTIP_COMMITS = {"8e2ea5d": "8e2ea5d778c0d8f272cd45a494aacc305096c1d2",
                 "0f2e0ac": "0f2e0ac5c889647ca306e844cfcbf062fdfce269"}

# CompressAI result file name -> (codec, codec_version, codec_config) as its name and description state them.
COMPRESSAI_CODECS = {
    "VTM-v15.0-lowdelay": ("VTM", "15.0", "low-delay (configuration file not stated)"),
    "x264-medium-tune-zerolatency": ("x264", "ffmpeg3.4.8", "preset medium, tune zerolatency; ffmpeg version "
                                                            "3.4.8-0ubuntu0.2"),
    "x265-medium-tune-zerolatency": ("x265", "ffmpeg3.4.8", "preset medium, tune zerolatency; ffmpeg version "
                                                            "3.4.8-0ubuntu0.2"),
    "ssf2020-from-authors": ("ssf2020", "authors", "numbers reported in [Agustsson2020]"),
    "ssf2020-mse-ans-vimeo": ("ssf2020", "compressai", "CompressAI re-implementation: mse, ans inference, trained "
                                                      "on Vimeo90k"),
}
HYTIP_PROTOCOL = ("HyTIP README RD figures (RD_I32): 96 frames, intra period 32, centre crop to a multiple of 64, "
                  "RGB PNGs converted with the stated matrix (HEVC-RGB native RGB); anchor VTM 17.0 low-delay B, "
                  "its configuration not described")
METRICS = {"PSNR-RGB": "psnr_rgb", "MS-SSIM-RGB": "msssim_rgb", "PSNR-YUV (DCVC-RT paper table)": "psnr_yuv",
           "PSNR-YUV420": "psnr_yuv", "PSNR-YUV": "psnr_yuv"}


def _read(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def sequence_names(catalogue: Path) -> dict[str, str]:
    """Raw file name -> catalogue sequence name, from datasets.yaml."""
    datasets = yaml.safe_load(catalogue.read_text())["datasets"]
    return {f: name for d in datasets.values() for name, s in d["sequences"].items() for f in s["files"]}


def convert_dcvc_anchor(published: Path, names: dict[str, str]) -> pd.DataFrame:
    rows = []
    for r in _read(published / "dcvc_repo_anchor_vtm17_yuv420_ldb_allframes_ip-1.csv"):
        pixels = int(r["frame_pixel_num"])
        width, height = (int(v) for v in r["sequence"].split("_")[1].split("x"))
        assert width * height == pixels, r["sequence"]
        rows.append({
            "codec": "VTM", "codec_version": "17.0",
            "codec_config": "encoder_lowdelay_vtm.cfg (low-delay B) --InputBitDepth=8 --DecodingRefreshType=2 "
                            "--Level=6.2",
            "dataset": r["dataset"].replace("_", "-"), "sequence": names[r["sequence"]], "color_transform": "none",
            "frames": r["frames"], "intra_period": -1, "crop": "none", "width": width, "height": height,
            "input_format": "yuv420p", "color_matrix": "n/a", "color_range": "n/a", "color_filter": "n/a", "rate_point": r["rate_point"],
            "bpp": r["bpp"], "psnr_y": r["psnr_y"], "psnr_u": r["psnr_u"], "psnr_v": r["psnr_v"],
            "psnr_yuv": r["psnr_yuv611"], "msssim_y": r["msssim_y"], "msssim_u": r["msssim_u"],
            "msssim_v": r["msssim_v"], "msssim_yuv": r["msssim_yuv611"], "yuv_weights": DCVC_YUV_WEIGHTS,
            "source": f"{DCVC} anchors/vtm_17.0_yuv420_LB_allf_ip0.json [{r['dataset']}][{r['sequence']}]"
                      f"[{r['rate_point']}]",
        })
    return pd.DataFrame(rows)


def convert_compressai(published: Path) -> pd.DataFrame:
    rows = []
    for r in _read(published / "compressai_repo_uvg1080p_video_results.csv"):
        codec, version, config = COMPRESSAI_CODECS[r["codec"]]
        rows.append({
            "codec": codec, "codec_version": version, "codec_config": config, "dataset": "UVG",
            "sequence": DATASET_MEAN, "color_transform": "unknown", "crop": "unknown", "input_format": "unknown",
            "color_matrix": "unknown", "color_range": "unknown", "color_filter": "unknown", "rate_point": r["qp_or_q"],
            "kbps": r["bitrate_kbps"], "psnr_rgb": r["psnr_rgb"], "msssim_rgb": r["msssim_rgb"],
            "psnr_y": r["psnr_y"], "psnr_u": r["psnr_u"], "psnr_v": r["psnr_v"], "psnr_yuv": r["psnr_yuv"],
            "yuv_weights": COMPRESSAI_YUV_WEIGHTS if r["psnr_yuv"] else "",
            "source": f"{COMPRESSAI} results/video/UVG-1080p/{r['codec']}.json point {r['rate_point']} "
                      f"(dataset UVG-1080p; description: {r['description']})",
        })
    return pd.DataFrame(rows)


def convert_hytip_bdrates(published: Path) -> pd.DataFrame:
    rows = []
    for r in _read(published / "hytip_readme_figure_legend_bdrates.csv"):
        short = r["source_version"].split("@")[1][:7]
        release = {"(updated results)": "current figures (updated results)",
                   "(first release figures, ICCV-era)": "first-release figures (ICCV era)",
                   "(blob unchanged since 0f2e0ac)": "current figures (MS-SSIM figure unchanged since 0f2e0ac)"}
        rows.append({
            "codec": r["codec"], "anchor": r["anchor"], "dataset": r["dataset"], "color_transform": r["color_transform"],
            "metric": METRICS[r["metric"]], "bd_rate_pct": r["bd_rate_pct"], "method": "not stated",
            "averaging": "not stated", "protocol": HYTIP_PROTOCOL,
            "release": f"{short} {release[r['source_version'].split(' ', 1)[1]]}",
            "source": f"NYCU-MAPL/HyTIP@{HYTIP_COMMITS[short]} {r['source_file']}: legend value, read from the image",
        })
    return pd.DataFrame(rows)


def convert_dcvc_bdrates(published: Path) -> pd.DataFrame:
    rows = []
    for r in _read(published / "dcvc_readme_figure_bdrates.csv"):
        rows.append({
            "codec": r["codec"], "anchor": r["anchor"], "dataset": r["dataset"],
            "color_transform": "BT709" if r["color_transform"].startswith("BT.709") else "none",
            "metric": METRICS[r["metric"]], "bd_rate_pct": r["bd_rate_pct"], "method": "not stated",
            "averaging": "not stated", "protocol": r["protocol_note"], "release": "54e8864",
            "source": f"{r['source_file']}: printed as {r['metric']!r}, read from the image",
        })
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("published", type=Path)
    parser.add_argument("--catalogue", type=Path, default=HERE.parent / "datasets.yaml")
    args = parser.parse_args()
    names = sequence_names(args.catalogue)
    write_rd_csv(convert_dcvc_anchor(args.published, names), HERE / "vtm-17.0_ldb_yuv420_allframes_ip-1_dcvc.csv")
    write_rd_csv(convert_compressai(args.published), HERE / "compressai_uvg1080p_video.csv")
    write_bd_table_csv(convert_hytip_bdrates(args.published), HERE / "published_bdrates_hytip_readme.csv")
    write_bd_table_csv(convert_dcvc_bdrates(args.published), HERE / "published_bdrates_dcvc_readme.csv")


if __name__ == "__main__":
    main()
