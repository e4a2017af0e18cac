"""The rebuilt golden checkpoint equals the one the official code was run with (content hash) and obeys
the fill protocol of the golden README §3, checked element by element with scalar arithmetic."""
import hashlib
import math

import golden
import numpy as np
import pytest
import torch


@pytest.fixture(scope="module")
def checkpoint():
    return torch.load(golden.golden_checkpoint_path(), map_location="cpu", weights_only=True)


def test_content_sha256_matches_published(checkpoint):
    assert set(checkpoint) == {"epoch", "state_dict"}
    assert golden.content_sha256(checkpoint["state_dict"]) == golden.CONTENT_SHA256


def test_keys_follow_manifest_order(checkpoint):
    entries = golden.load_manifest()["entries"]
    assert list(checkpoint["state_dict"]) == [e["raw_checkpoint_key"] for e in entries]
    assert len(entries) == 1193


def _scalar_weight(raw_key, shape, i, gain):
    """Element i of a generated kernel, straight from the README formula, one element at a time."""
    n = math.prod(shape)
    by = hashlib.shake_256(raw_key.encode()).digest(4 * n)[4 * i:4 * i + 4]
    k = by[1] + 256 * by[2] + 65536 * by[3]
    b = gain / math.sqrt(shape[1] * shape[2] * shape[3])
    return float(np.float32((2 * k + 1 - 2 ** 24) * (b / 2 ** 24)))


@pytest.mark.parametrize("raw_key, gain", [
    ("if_model.module.net.enc.enc_1.0.conv1.weight", 1.2),
    ("if_model.module.net.hyper_enc.3.weight", 20.0),
    ("Residual.module.net.MaskGenerator.net.up_1.4.weight", 100.0),
    ("Residual.module.net.contextual_decoder.up1.0.weight", 1.5),
    ("MENet.module.net.Blocks.4.8.weight", 1.2),
])
def test_generated_kernels_obey_fill_formula(checkpoint, raw_key, gain):
    w = checkpoint["state_dict"][raw_key]
    shape = list(w.shape)
    flat = w.reshape(-1)
    n = flat.numel()
    for i in (0, 1, 2, n // 2, n - 1):
        assert flat[i].item() == _scalar_weight(raw_key, shape, i, gain)
    bound = gain / math.sqrt(shape[1] * shape[2] * shape[3])
    assert flat.abs().max().item() < bound
    # Uniform(-b, b): mean |w| = b/2 up to sampling noise.
    assert abs(flat.abs().mean().item() / bound - 0.5) < 0.05


def test_stored_overrides_present(checkpoint):
    sd = checkpoint["state_dict"]
    # Intra q anchors per README §3: enc ≈ [0.25, 0.63, 1.59, 4.0], geometric from 0.25 to 4; dec = enc^-0.5.
    enc = sd["if_model.module.net.q_scale_enc"].flatten().double()
    dec = sd["if_model.module.net.q_scale_dec"].flatten().double()
    assert torch.allclose(enc, 0.25 * 16.0 ** (torch.arange(4, dtype=torch.float64) / 3), rtol=1e-6)
    assert torch.allclose(dec, enc ** -0.5, rtol=1e-6)
    # CDF buffers are empty in a trainer-saved checkpoint.
    assert sd["Residual.module.net.context_model.gaussian_conditional._quantized_cdf"].numel() == 0
