import math

import numpy as np
import pytest
import torch

from bench.measure.metrics import msssim_plane, msssim_rgb, psnr_plane, psnr_rgb


def test_psnr_matches_formula_on_known_error():
    ref = torch.zeros(1, 3, 8, 8)
    x = ref.clone()
    x[0, 0, 0, 0] = 0.5  # one sample off by 0.5 -> mse = 0.25 / 192
    assert psnr_rgb(x, ref).item() == pytest.approx(10 * math.log10(192 / 0.25), abs=1e-9)


def test_psnr_uses_all_three_channels_not_luma():
    rng = np.random.default_rng(0)
    ref = torch.from_numpy(rng.random((2, 3, 16, 16)))
    x = (ref + torch.from_numpy(rng.normal(0, 0.01, ref.shape))).clamp(0, 1)
    expected = [10 * np.log10(1 / np.mean((x[i].numpy() - ref[i].numpy()) ** 2)) for i in range(2)]
    np.testing.assert_allclose(psnr_rgb(x, ref).numpy(), expected, rtol=1e-12)


def test_msssim_identical_is_one_and_small_frames_are_nan():
    x = torch.rand(1, 3, 192, 192)
    assert msssim_rgb(x, x).item() == pytest.approx(1.0, abs=1e-6)
    assert math.isnan(msssim_rgb(x[..., :128, :], x[..., :128, :]).item())


def test_msssim_is_mean_of_per_channel_values():
    rng = np.random.default_rng(1)
    ref = torch.from_numpy(rng.random((1, 3, 176, 176)).astype(np.float32))
    x = (ref + 0.05 * torch.from_numpy(rng.standard_normal(ref.shape).astype(np.float32))).clamp(0, 1)
    per_channel = [msssim_rgb(x[:, [c] * 3], ref[:, [c] * 3]).item() for c in range(3)]
    assert msssim_rgb(x, ref).item() == pytest.approx(np.mean(per_channel), abs=1e-6)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="equal shape"):
        psnr_rgb(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 5))


def test_plane_psnr_uses_the_peak_of_the_bit_depth():
    ref = np.full((4, 4), 512, np.uint16)
    x = ref.copy()
    x[0, 0] = 516  # mse = 16 / 16 = 1
    assert psnr_plane(x, ref, 1023) == pytest.approx(20 * math.log10(1023))
    assert psnr_plane(ref, ref, 255) == math.inf


def test_plane_msssim_equals_rgb_msssim_of_a_grey_frame():
    rng = np.random.default_rng(2)
    ref = rng.integers(0, 256, (170, 180)).astype(np.uint8)
    x = np.clip(ref.astype(int) + rng.integers(-9, 10, ref.shape), 0, 255).astype(np.uint8)
    as_rgb = [torch.from_numpy(a.astype(np.float32) / 255).expand(1, 3, *a.shape) for a in (x, ref)]
    assert msssim_plane(x, ref, 255) == pytest.approx(msssim_rgb(*as_rgb).item(), abs=1e-5)
    assert math.isnan(msssim_plane(x[:100], ref[:100], 255))
