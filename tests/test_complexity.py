"""bench.measure.complexity against the official measurements (tests/data/complexity/official.json, from the release).

* kMAC/pixel of one P-frame with a temporal prior, counted the release's way (ptflops 0.7.5 pytorch backend,
  frame 2 after an unpredicted frame 1, all-ones frames), for the encoder (full forward) and the decoder (zero
  latents). Per-pixel MACs are the same at every size that is a multiple of 64 (the release measured 448x256 and
  1920x1024), so the fast tests check the official figures at 64x64 and the slow ones the official integers.
* fvcore: the release's 1261.74 kMAC/px traced the reconstruction only, and JIT tracing drops what it does not
  depend on: the two feature generators that only feed the next frame's buffer. Counting every output adds
  exactly those two convolutions.
* Parameters per top-level module and the "model size", and the temporal buffer.
"""
import importlib.metadata
import json
from pathlib import Path

import pytest
import torch

from bench.errors import InputError
from bench.measure.published_complexity import figure_readings
from bench.measure.complexity import (
    parameter_counts,
    pframe_kmac_per_pixel,
    temporal_buffer,
)
import hytip.layers
from hytip.model import HyTIP

MEASURED = Path(__file__).parent.parent / "anchors" / "measured_complexity.json"
OFFICIAL = json.loads((Path(__file__).parent / "data" / "complexity" / "official.json").read_text())
PTFLOPS = OFFICIAL["ptflops_0.7.5"]
FVCORE = OFFICIAL["fvcore_encode_448x256"]
W, H = 448, 256


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return HyTIP().eval()


def _official(path, size="448x256"):
    return next(e for e in PTFLOPS[path] if e["size_WxH"] == size)


def _feature_generator_macs(model, h, w):
    """MACs of the two convolutions whose outputs only feed the next frame (ref_feature 2@1, ref_mv_feature
    2@1/4), from their shapes: Cin*Cout*k*k per output position."""
    total = 0
    for conv, scale in ((model.inter.frame_feature_generator.recon_conv, 1), (model.motion.feature_generator, 4)):
        kh, kw = conv.kernel_size
        total += conv.in_channels * conv.out_channels * kh * kw * (h // scale) * (w // scale)
    return total


def test_parameters_per_module(model):
    counts = parameter_counts(model)
    assert {m.module: m.parameters for m in counts.modules} == OFFICIAL["params_per_top_level_module"]
    assert counts.total == OFFICIAL["params_total_incl_intra"]
    assert [m.module for m in counts.modules if not m.in_model_size] == ["if_model"]
    assert round(counts.model_size / 1e6, 3) == OFFICIAL["model_size_M"]


@pytest.mark.parametrize("ffn_parts", [False, True])
def test_ptflops_per_pixel_at_a_multiple_of_64(model, monkeypatch, ffn_parts):
    """Also with every FFN expansion computed in parts (hytip.layers.ConvRows, as from about 1080p): ptflops counts
    the parts as the convolutions they are."""
    if ffn_parts:
        monkeypatch.setattr(hytip.layers, "SPLIT_ELEMENTS", 0)
    h = w = 64
    enc, dec = pframe_kmac_per_pixel(model, h, w)
    for rec, path in ((enc, "encode"), (dec, "decode")):
        official = _official(path)
        assert rec.macs * (W * H) == official["MACs"] * (h * w), f"{path}: {rec.kmac_per_pixel} kMAC/px"
        assert rec.kmac_per_pixel == official["kMAC_per_pixel"]
        assert (rec.counter, rec.path, rec.width, rec.height) == ("ptflops", path, w, h)
        assert rec.counter_version == importlib.metadata.version("ptflops")
        assert "grid_sample" in rec.protocol and "frame_idx=2" in rec.protocol


def test_ptflops_0_7_4s_transposed_convolution_rule_gives_the_readme_figures_count(model, capfd):
    """ptflops 0.7.4 counted ConvTranspose2d on output positions; the rule 'output' reproduces its official count
    exactly (the README figure's 1293 / 872), 'input' that of 0.7.5, with the pinned counter either way. The
    difference is HyTIP's two stride-2 transposed convolutions. ptflops prints nothing while counting."""
    h = w = 64
    by_output = dict(zip(("encode", "decode"), pframe_kmac_per_pixel(model, h, w, deconv_rule="output")))
    for path, rec in by_output.items():
        official = next(e for e in OFFICIAL["ptflops_0.7.4"][path] if e["size_WxH"] == "448x256")
        assert rec.macs * (W * H) == official["MACs"] * (h * w), f"{path}: {rec.kmac_per_pixel} kMAC/px"
        assert "per output position" in rec.protocol
    assert capfd.readouterr() == ("", "")
    # so counted, HyTIP lies within the reading error of its marker in the README's figure (anchors/)
    reading = next(r for r in figure_readings() if r.codec == "HyTIP")
    assert abs(by_output["encode"].kmac_per_pixel - reading.enc_kmac_per_pixel) <= reading.errors["kMAC/px"]
    assert abs(by_output["decode"].kmac_per_pixel - reading.dec_kmac_per_pixel) <= reading.errors["kMAC/px"]
    enc, dec = pframe_kmac_per_pixel(model, h, w)
    bundled = next(c for c in json.loads(MEASURED.read_text())["configurations"] if c["codec"] == "HyTIP")
    assert (bundled["enc_kmac_per_pixel"], bundled["dec_kmac_per_pixel"]) == \
        pytest.approx((enc.kmac_per_pixel, dec.kmac_per_pixel), rel=1e-12)   # the bundle is this code's count
    # what the count leaves out, sized by rule: the warps, the GDNs' functional convolutions, the @ products
    assert {u.op for u in enc.unseen} == {"grid_sample", "conv (functional)", "matmul (@)"}
    assert {u.op: u.calls for u in enc.unseen}["matmul (@)"] == 8   # 2 per channel attention, 4 attentions


@pytest.mark.slow
def test_ptflops_official_integers_at_448x256(model):
    enc, dec = pframe_kmac_per_pixel(model, H, W)
    assert (enc.macs, dec.macs) == (_official("encode")["MACs"], _official("decode")["MACs"]), \
        f"kMAC/pixel enc/dec {enc.kmac_per_pixel} / {dec.kmac_per_pixel}"
    assert (round(enc.kmac_per_pixel, 2), round(dec.kmac_per_pixel, 2)) == (1265.83, 845.12)


def test_fvcore_reproduces_the_release_figure_and_the_feature_generators_explain_the_rest(model):
    h = w = 64
    traced = dict(zip(("encode", "decode"), pframe_kmac_per_pixel(model, h, w, counter="fvcore",
                                                                  fvcore_outputs="reconstruction")))
    full = dict(zip(("encode", "decode"), pframe_kmac_per_pixel(model, h, w, counter="fvcore")))
    assert traced["encode"].macs * (W * H) == FVCORE["MACs"] * (h * w)
    assert abs(traced["encode"].kmac_per_pixel - 1261.74) < 0.01
    assert {name: macs * (W * H) for name, macs in traced["encode"].by_module} == \
        {name: macs * (h * w) for name, macs in FVCORE["by_top_module"].items()}
    for path in ("encode", "decode"):
        assert full[path].macs - traced[path].macs == _feature_generator_macs(model, h, w)
        assert full[path].counter_version == importlib.metadata.version("fvcore")


@pytest.mark.slow
def test_fvcore_at_448x256(model):
    traced, _ = pframe_kmac_per_pixel(model, H, W, counter="fvcore", fvcore_outputs="reconstruction")
    full, _ = pframe_kmac_per_pixel(model, H, W, counter="fvcore")
    assert traced.macs == FVCORE["MACs"]
    assert dict(traced.by_module) == FVCORE["by_top_module"]
    assert full.macs == FVCORE["MACs"] + _feature_generator_macs(model, H, W)


def test_temporal_buffer_matches_the_official_shapes(model):
    buffer = temporal_buffer(model, H, W)
    official = OFFICIAL["temporal_buffer_448x256"]
    assert [t.name for t in buffer.tensors] == list(official)
    for t in buffer.tensors:
        assert [1, t.channels, t.height, t.width] == official[t.name]["shape"], t.name
        assert t.scale == official[t.name]["scale"]
        assert t.channel_equivalent == official[t.name]["full_res_channel_equivalent"]
        assert t.bytes_float32 == 4 * t.channels * t.height * t.width
    assert buffer.total_channel_equivalent == OFFICIAL["temporal_buffer_total_channel_equivalent"]
    latents = sum(t.channel_equivalent for t in buffer.tensors if t.name in ("ref_y", "ref_mv_y"))
    assert buffer.total_channel_equivalent - latents == OFFICIAL["temporal_buffer_total_without_latents"]
    assert buffer.total_bytes_float32 == 7.875 * H * W * 4


@pytest.mark.parametrize("height, width", [(16, 16), (48, 80), (64, 64)])
def test_temporal_buffer_total_at_any_multiple_of_16(model, height, width):
    buffer = temporal_buffer(model, height, width)
    assert buffer.total_channel_equivalent == OFFICIAL["temporal_buffer_total_channel_equivalent"]
    assert buffer.total_bytes_float32 == sum(4 * t.channels * t.height * t.width for t in buffer.tensors)


def test_bad_arguments_are_input_errors(model):
    with pytest.raises(InputError, match="multiples of 16"):
        temporal_buffer(model, 60, 64)
    with pytest.raises(InputError, match="multiples of 16"):
        pframe_kmac_per_pixel(model, 64, 72)
    with pytest.raises(InputError, match="ptflops, fvcore"):
        pframe_kmac_per_pixel(model, 64, 64, counter="thop")
    with pytest.raises(InputError, match="only applies to counter='fvcore'"):
        pframe_kmac_per_pixel(model, 64, 64, fvcore_outputs="reconstruction")
