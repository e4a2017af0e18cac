"""Benchmark: a full BD table, 60 sequences x 10 codecs x 4 settings (2 colour transforms x 2 metrics).

Run: python -m bench.benchmarks.bdrate_speed [--repeat N]. Prints the time of bench.analysis.bdrate.bd_tables (pairing,
2400 BD-rate and 2400 BD-quality values, per-dataset and average rows) and, for scale, of the same BD-rates
computed one pair per call with the bjontegaard package.
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

from bench.analysis.bdrate import bd_tables
from bench.analysis.rd_schema import RD_COLUMNS

DATASETS = {"UVG": 7, "MCL-JCV": 30, "HEVC-B": 5, "HEVC-C": 4, "HEVC-D": 4, "HEVC-E": 3, "HEVC-RGB": 7}
TRANSFORMS = ("BT601", "BT709")


def synthetic_rd(n_codecs: int = 10, points: int = 4, anchor_points: int = 6, seed: int = 0) -> pd.DataFrame:
    """RD points in the anchor schema for the 60 sequences of DATASETS: an anchor "VTM-17.0" and n_codecs test
    codecs, each a random rate scaling of a concave PSNR(log rate) curve per sequence."""
    rng = np.random.default_rng(seed)
    rows = []
    base = dict.fromkeys(RD_COLUMNS, None)
    for dataset, count in DATASETS.items():
        for s in range(count):
            sequence = f"{dataset}_seq{s}"
            offset = rng.uniform(28, 34)
            for transform in TRANSFORMS:
                for c in range(n_codecs + 1):
                    codec, n = ("VTM", anchor_points) if c == 0 else (f"codec{c}", points)
                    scale = 1.0 if c == 0 else rng.uniform(0.85, 1.15)
                    bpp = np.geomspace(0.01, 0.3, n) * scale
                    psnr = offset + 4 * np.log2(bpp / scale * 100) - 0.1 * np.log2(bpp / scale * 100) ** 2
                    for k in range(n):
                        rows.append({**base, "codec": codec, "codec_version": "17.0" if c == 0 else "1",
                                     "codec_config": "synthetic", "dataset": dataset, "sequence": sequence,
                                     "color_transform": transform, "frames": 96, "intra_period": 32,
                                     "crop": "centre-64", "width": 1920, "height": 1024, "input_format": "rgb24",
                                     "color_matrix": transform, "color_range": "full", "color_filter": "bilinear", "rate_point": str(k),
                                     "bpp": bpp[k], "psnr_rgb": psnr[k], "msssim_rgb": 1 - 10 ** (-psnr[k] / 20),
                                     "source": "synthetic", "file": "synthetic", "where": f"point {k}"})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rd = synthetic_rd()
    pairs = rd.loc[rd["codec"] != "VTM"].groupby(["codec", "dataset", "sequence", "color_transform"]).ngroups * 2
    timings = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        tables = bd_tables(rd, "VTM-17.0", ("psnr_rgb", "msssim_rgb"))
        timings.append(time.perf_counter() - start)
    assert len(tables.sequences) == pairs, (len(tables.sequences), pairs)
    print(f"bd_tables: {pairs} pairs (60 sequences x 10 codecs x 4 settings), BD-rate + BD-quality, pchip: "
          f"best {min(timings) * 1e3:.1f} ms, median {np.median(timings) * 1e3:.1f} ms over {args.repeat} runs")

    import bjontegaard  # the per-call reference, for scale only

    anchor = rd[rd["codec"] == "VTM"].groupby(["dataset", "sequence", "color_transform"])
    curves = {k: (g["bpp"].to_numpy(), g["psnr_rgb"].to_numpy()) for k, g in anchor}
    tests = [((d, s, t), g["bpp"].to_numpy(), g["psnr_rgb"].to_numpy())
             for (c, d, s, t), g in rd[rd["codec"] != "VTM"].groupby(["codec", "dataset", "sequence", "color_transform"])]
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for key, rate, psnr in tests * 2:
            bjontegaard.bd_rate(*curves[key], rate, psnr, "pchip", require_matching_points=False)
    print(f"bjontegaard 1.3.0, one call per pair: {len(tests) * 2} BD-rates in "
          f"{(time.perf_counter() - start) * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
