"""`run_bench.py complexity`: the printed and written figures are the ones bench.measure.complexity returns, and the
published figures of other codecs come from the bundled anchors/published_complexity.csv."""
import csv
import re

import pytest

from bench import cli
from bench.errors import InputError
from bench.measure.complexity import parameter_counts, pframe_kmac_per_pixel, temporal_buffer
from bench.measure.published_complexity import FIGURE_READINGS, PUBLISHED_COMPLEXITY, figure_readings, published_complexity
from hytip.model import HyTIP

H = W = 64


@pytest.fixture
def run(capsys):
    def run(*argv):
        code = cli.main(["complexity", *argv])
        captured = capsys.readouterr()
        return code, captured.out, captured.err
    return run


@pytest.fixture(scope="module")
def expected():
    model = HyTIP().eval()
    macs = [m for counter in ("ptflops", "fvcore") for m in pframe_kmac_per_pixel(model, H, W, counter=counter)]
    return parameter_counts(model), macs, temporal_buffer(model, H, W)


def _row(out, *cells):
    """True when one printed line holds the cells in order, separated by spaces."""
    return re.search(r"^\s*" + r"\s+".join(re.escape(str(c)) for c in cells) + r"(\s|$)", out, re.M) is not None


def test_printed_and_written_figures_are_the_functions(run, expected, tmp_path):
    params, macs, buffer = expected
    out_csv = tmp_path / "complexity.csv"
    code, out, _ = run("--size", f"{W}x{H}", "--counter", "ptflops", "fvcore", "--csv", str(out_csv))
    assert code == 0
    assert "Weights do not matter" in out

    for m in params.modules:
        assert _row(out, m.module, m.parameters, "yes" if m.in_model_size else "no"), m.module
    assert _row(out, "total", params.total)
    assert _row(out, "model size", params.model_size, f"{params.model_size / 1e6:.3f} M")
    for m in macs:
        assert _row(out, f"{m.counter} {m.counter_version}", m.path, m.macs, f"{m.kmac_per_pixel:.2f}"), m
    for t in buffer.tensors:
        assert _row(out, t.name, t.channels, f"{t.width}x{t.height}", t.scale, f"{t.channel_equivalent:.3f}",
                    t.bytes_float32), t.name
    assert buffer.total_channel_equivalent == 7.875
    assert _row(out, "total", "7.875", buffer.total_bytes_float32)
    for p in published_complexity():
        assert _row(out, p.codec), p.codec

    with out_csv.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert {(r["section"], r["name"], r["unit"]): r["value"] for r in rows} == {
        **{("parameters", m.module, "parameters"): str(m.parameters) for m in params.modules},
        ("parameters", "total", "parameters"): str(params.total),
        ("parameters", "model_size", "parameters"): str(params.model_size),
        **{("kmac", f"{m.path} {m.counter} {m.counter_version}", "MACs"): str(m.macs) for m in macs},
        **{("kmac", f"{m.path} {m.counter} {m.counter_version}", "kMAC/pixel"): str(m.kmac_per_pixel) for m in macs},
        **{("temporal_buffer", t.name, "full-res channel equivalents"): str(t.channel_equivalent)
           for t in buffer.tensors},
        **{("temporal_buffer", t.name, "bytes (float32)"): str(t.bytes_float32) for t in buffer.tensors},
        ("temporal_buffer", "total", "full-res channel equivalents"): "7.875",
        ("temporal_buffer", "total", "bytes (float32)"): str(buffer.total_bytes_float32),
    }
    assert all(r["protocol"] for r in rows)


@pytest.mark.parametrize("size, message", [("64", "expected WxH"), ("72x64", "multiples of 16")])
def test_bad_size_is_one_clear_error(run, size, message):
    code, out, err = run("--size", size)
    assert code == 2 and out == ""
    assert err.startswith("error:") and message in err


def test_help(run, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run("--help")
    assert exit_info.value.code == 0
    help_text = capsys.readouterr().out
    assert "--size WxH" in help_text and "448x256" in help_text and "{ptflops,fvcore}" in help_text


def test_published_complexity_is_read_as_bundled():
    with PUBLISHED_COMPLEXITY.open(newline="") as f:
        rows = list(csv.DictReader(f))
    records = published_complexity()
    assert [r.codec for r in records] == [row["codec"] for row in rows]
    for record, row in zip(records, rows):
        if row["macs_per_frame"]:
            assert (record.macs_per_frame, record.params_m) == (row["macs_per_frame"], float(row["params_M"]))
        else:
            low, high = record.decode_mac_per_pixel_min, record.decode_mac_per_pixel_max
            assert f"min={low} max={high}" in row["note"]
    assert sum(r.macs_per_frame is not None for r in records) == 4   # the DCVC-RT complexity table


def test_published_complexity_rejects_a_row_without_figures(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("codec,macs_per_frame,params_M,avg_bd_rate_pct,enc_dec_fps_1080p_A100,source,note\n"
                    "X,,,,,somewhere,no numbers here\n")
    with pytest.raises(InputError, match=r"bad.csv line 2: .*'X'"):
        published_complexity(path)


def test_figure_readings_are_read_as_bundled_and_a_bad_file_is_named(tmp_path):
    readings = {r.codec: r for r in figure_readings()}
    assert list(readings) == ["HyTIP", "DCVC-TCM", "DCVC-HEM", "DCVC-DC", "DCVC-FM", "MaskCRT"]
    assert (readings["DCVC-DC"].enc_kmac_per_pixel, readings["DCVC-DC"].temporal_buffer) == (1343, 55.75)
    assert readings["MaskCRT"].errors == {"kMAC/px": 4, "params": 0.1, "buffer": 0.5}
    assert readings["HyTIP"].errors["buffer"] == 0.2
    bad = tmp_path / "readings.csv"
    bad.write_text(FIGURE_READINGS.read_text().replace("kMAC/px +-4, params +-0.1, buffer +-0.5", "about 4", 1))
    with pytest.raises(InputError, match=r"readings.csv line 3: reading_error 'about 4'"):
        figure_readings(bad)
    with pytest.raises(InputError, match="figure readings CSV not found"):
        figure_readings(tmp_path / "none.csv")
