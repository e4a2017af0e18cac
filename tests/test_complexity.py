"""Complexity hooks of the HyTIP model against the official measurements (tests/data/pframe/complexity.json).

* kMAC/pixel of one P-frame with a temporal prior, counted the release's way (ptflops 0.7.5 pytorch backend,
  frame 2 after an unpredicted frame 1, all-ones frames), for the encoder (full ``HyTIP.forward``) and the
  decoder (``ZeroLatentDecoder``: zero latents, no motion estimation or analysis transforms).
* Parameters per top-level module and the temporal buffer size in full-resolution channel equivalents.
"""
import json
from pathlib import Path

import pytest
import torch
from ptflops import get_model_complexity_info

from hytip.model import HyTIP, TemporalState, ZeroLatentDecoder

FACTS = json.loads((Path(__file__).parent / "data" / "pframe" / "complexity.json").read_text())
W, H = (int(v) for v in FACTS["size_WxH"].split("x"))


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return HyTIP().eval()


def _state_after_first_pframe(model, h, w):
    torch.manual_seed(1)
    with torch.no_grad():
        out = model.forward_pframe(torch.rand(1, 3, h, w), torch.rand(1, 3, h, w), TemporalState(),
                                   frame_idx=1, qp=0, predict=False)
    return out.state


def test_parameters_per_module(model):
    for name, expected in FACTS["params_per_top_level_module"].items():
        got = sum(p.numel() for p in getattr(model, name).parameters())
        assert got == expected, f"{name}: {got} parameters, official {expected}"


def test_temporal_buffer_channel_equivalents(model):
    h, w = 64, 128
    state = _state_after_first_pframe(model, h, w)
    buffers = {"ref_frame": torch.zeros(1, 3, h, w), **state.tensors()}
    assert set(buffers) == {"ref_frame", "ref_flow", "ref_feature", "ref_y", "ref_mv_feature", "ref_mv_y"}
    total = sum(t.shape[1] * t.shape[2] * t.shape[3] for t in buffers.values()) / (h * w)
    assert total == FACTS["temporal_buffer_total_channel_equivalent"]


@pytest.mark.slow
def test_pframe_kmac_per_pixel(model):
    state = _state_after_first_pframe(model, H, W)
    ones = torch.ones(1, 3, H, W)
    with torch.no_grad():
        enc, _ = get_model_complexity_info(
            model, (1, 3, H, W), as_strings=False, print_per_layer_stat=False,
            input_constructor=lambda _: dict(ref_frame=ones, x=ones, state=state, frame_idx=2, qp=0, predict=True))
        dec, _ = get_model_complexity_info(
            ZeroLatentDecoder(model), (1, 3, H, W), as_strings=False, print_per_layer_stat=False,
            input_constructor=lambda _: dict(ref_frame=ones, state=state, frame_idx=2, qp=0, predict=True))
    kmac = (enc / (H * W) / 1e3, dec / (H * W) / 1e3)
    assert (enc, dec) == (FACTS["MACs_encode"], FACTS["MACs_decode"]), \
        f"kMAC/pixel enc/dec {kmac}, official {FACTS['kMAC_per_pixel_encode']} / {FACTS['kMAC_per_pixel_decode']}"
