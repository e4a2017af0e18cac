"""Colour conversion against independent references: ffmpeg's own conversion of real frames, published matrix
coefficients and code ranges, scipy / CompressAI chroma upsampling, and round trips.

The real frames are a 256x128 crop of 8 frames of the bundled Big Buck Bunny clip, cut by ffmpeg at test time.
"""
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bench.data.clips import bundled_clip_path
from bench.data.colour import (
    ColourSpec,
    rgb_to_yuv420,
    rgb_to_yuv444,
    yuv420_to_rgb,
    yuv444_to_rgb,
)
from bench.data.readers import ffmpeg_exe, open_source
from bench.errors import InputError
from bench.measure.metrics import psnr_plane

W, H, N = 256, 128, 8
BT601 = ColourSpec.for_protocol("BT601")
BT709 = ColourSpec.for_protocol("BT709")
FFMPEG_TAGS = {"bt601": [], "bt709": ["-colorspace", "bt709", "-color_range", "pc"]}


def ffmpeg(*args):
    subprocess.run([ffmpeg_exe(), "-v", "error", "-nostdin", "-y", *map(str, args)], check=True)


def stack_planes(path: Path, pix_fmt: str):
    frames = list(open_source(path, width=W, height=H, pix_fmt=pix_fmt).frames())
    return tuple(np.stack(p) for p in zip(*frames))


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("colour")
    cut = ["-i", bundled_clip_path(), "-frames:v", N, "-vf", f"crop={W}:{H}:500:300", "-f", "rawvideo"]
    ffmpeg(*cut, "-pix_fmt", "yuv420p", d / "a.yuv")
    ffmpeg(*cut, "-pix_fmt", "yuv420p10le", d / "a10.yuv")
    return d


@pytest.fixture(scope="module")
def planes(clip_dir):
    return stack_planes(clip_dir / "a.yuv", "yuv420p")


@pytest.fixture(scope="module", params=["bt601", "bt709"])
def ffmpeg_png(request, clip_dir):
    """RGB as the official protocol makes it: ffmpeg's default conversion of the raw YUV to PNG frames."""
    spec = BT601 if request.param == "bt601" else BT709
    folder = clip_dir / request.param
    folder.mkdir(exist_ok=True)
    ffmpeg("-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{W}x{H}", *FFMPEG_TAGS[request.param],
           "-i", clip_dir / "a.yuv", folder / "frame_%d.png")
    rgb = np.stack([np.asarray(Image.open(folder / f"frame_{n}.png").convert("RGB")) for n in range(1, N + 1)])
    return spec, torch.from_numpy(rgb).permute(0, 3, 1, 2).double()


def levels(rgb: torch.Tensor) -> torch.Tensor:
    return rgb.double() * 255


def test_ffmpeg_mode_is_bit_exact_with_ffmpeg_png_export(planes, ffmpeg_png):
    spec, png = ffmpeg_png
    ours = levels(yuv420_to_rgb(*planes, ColourSpec(spec.matrix, spec.range, "ffmpeg")))
    assert ours.shape == (N, 3, H, W)
    assert (ours - ours.round()).abs().max() < 1e-4
    assert torch.equal(ours.round(), png)


def test_default_filter_is_the_one_closest_to_ffmpeg_default_conversion(planes, ffmpeg_png):
    spec, png = ffmpeg_png
    # Measured on these frames: nearest differs from ffmpeg by at most 3 levels (ffmpeg's fixed-point tables
    # read about one level darker on average); bilinear and bicubic chroma differ by up to ~30 levels at edges.
    default = levels(yuv420_to_rgb(*planes, ColourSpec(spec.matrix, spec.range, "nearest")))
    assert (default - png).abs().max() <= 3 + 1e-4
    assert (default - png).abs().mean() <= 1.5
    scores = {f: psnr_plane(levels(yuv420_to_rgb(*planes, ColourSpec(spec.matrix, spec.range, f))).numpy(),
                         png.numpy(), 255)
              for f in ("nearest", "bilinear", "bicubic")}
    assert scores["nearest"] > max(scores["bilinear"], scores["bicubic"]) + 2
    assert min(scores.values()) > 40


def test_protocol_defaults():
    assert BT601.describe() == {"matrix": "bt601", "range": "limited", "filter": "nearest", "rgb_bits": 8}
    assert BT709.describe() == {"matrix": "bt709", "range": "full", "filter": "bilinear", "rgb_bits": 8}
    assert ColourSpec() == BT601
    assert str(BT709) == "BT709 full range, bilinear chroma, RGB 8-bit"


@pytest.mark.parametrize("field, value", [("matrix", "bt2020"), ("range", "tv"), ("filter", "lanczos"),
                                          ("rgb_bits", 10)])
def test_spec_rejects_unknown_values(field, value):
    with pytest.raises(InputError, match=f"{field} {value!r} is not one of"):
        ColourSpec(**{field: value})
    with pytest.raises(InputError, match="BT2020"):
        ColourSpec.for_protocol("BT2020")


def flat_planes(y, u, v, size=(4, 4)):
    h, w = size
    return (np.full((h, w), y, np.uint16), np.full((h // 2, w // 2), u, np.uint16),
            np.full((h // 2, w // 2), v, np.uint16))


def test_bt601_limited_matches_the_published_8bit_matrix():
    # ITU-R BT.601 studio range, as usually published: R = 1.164(Y-16) + 1.596(Cr-128), ...
    rng = np.random.default_rng(0)
    for y, u, v in rng.integers(16, 236, size=(50, 3)):
        rgb = yuv420_to_rgb(*(p.astype(np.uint8) for p in flat_planes(y, u, v)), ColourSpec(rgb_bits=None))
        expected = np.clip([1.164 * (y - 16) + 1.596 * (v - 128),
                            1.164 * (y - 16) - 0.392 * (u - 128) - 0.813 * (v - 128),
                            1.164 * (y - 16) + 2.017 * (u - 128)], 0, 255)
        np.testing.assert_allclose(levels(rgb)[:, 0, 0].numpy(), expected, atol=0.3)


def test_bt709_full_matches_the_published_matrix_at_8_and_10_bit():
    # BT.709: R = Y + 1.5748 Cr, G = Y - 0.1873 Cb - 0.4681 Cr, B = Y + 1.8556 Cb (Cb, Cr centred on zero).
    rng = np.random.default_rng(1)
    spec = ColourSpec("bt709", "full", "nearest", None)
    for bits in (8, 10):
        top = 2**bits - 1
        for y, u, v in rng.integers(0, top + 1, size=(50, 3)):
            rgb = yuv420_to_rgb(*flat_planes(y, u, v), spec, bit_depth=bits)
            yy, cb, cr = y / top, (u - 2 ** (bits - 1)) / top, (v - 2 ** (bits - 1)) / top
            expected = np.clip([yy + 1.5748 * cr, yy - 0.1873 * cb - 0.4681 * cr, yy + 1.8556 * cb], 0, 1)
            np.testing.assert_allclose(rgb[:, 0, 0].numpy(), expected, atol=2e-4)


@pytest.mark.parametrize("bits, black, white, cmax", [(8, 16, 235, 240), (10, 64, 940, 960)])
def test_limited_range_code_values(bits, black, white, cmax):
    colours = torch.tensor([[0, 0, 0], [1, 1, 1], [0, 0, 1], [1, 0, 0]], dtype=torch.float32)
    rgb = colours[:, :, None, None].expand(4, 3, 2, 2)
    y, u, v = rgb_to_yuv420(rgb, BT601, bit_depth=bits)
    mid = 2 ** (bits - 1)
    assert y[:2, 0, 0].tolist() == [black, white]
    assert u[:2, 0, 0].tolist() == v[:2, 0, 0].tolist() == [mid, mid]
    assert u[2, 0, 0] == cmax and v[3, 0, 0] == cmax  # pure blue / red reach the top of the 16-240 range
    back = yuv420_to_rgb(y, u, v, ColourSpec(rgb_bits=None), bit_depth=bits)
    torch.testing.assert_close(back, rgb, atol=2.5 / 2**bits, rtol=0)


def test_bt601_forward_matches_the_published_matrix():
    # Y = 16 + 65.481 R + 128.553 G + 24.966 B; Cb = 128 - 37.797 R - 74.203 G + 112 B; Cr = 128 + 112 R - 93.786 G
    # - 18.214 B (R, G, B in [0, 1]); colours are constant over each 2x2 block so every filter sees the same chroma.
    rgb = torch.rand(3, 8, 8).repeat_interleave(2, -2).repeat_interleave(2, -1)
    r, g, b = rgb[:, ::2, ::2].double()
    expected = [16 + 65.481 * r + 128.553 * g + 24.966 * b, 128 - 37.797 * r - 74.203 * g + 112.0 * b,
                128 + 112.0 * r - 93.786 * g - 18.214 * b]
    for f in ("nearest", "bilinear"):  # bicubic taps reach into the neighbouring blocks
        y, u, v = rgb_to_yuv420(rgb, ColourSpec(filter=f))
        for got, exp in zip((y[::2, ::2], u, v), expected):
            assert (got.double() - exp).abs().max() <= 0.5 + 1e-3


def test_bilinear_upsampling_is_scipy_zoom_order_1_as_dcvc_uses(planes):
    ndimage = pytest.importorskip("scipy.ndimage")
    y, u, v = (p[0].astype(np.float64) for p in planes)
    ours = yuv420_to_rgb(planes[0][0], planes[1][0], planes[2][0], ColourSpec("bt709", "full", "bilinear", None))
    cb = ndimage.zoom(u, 2, order=1) / 255 - 128 / 255
    cr = ndimage.zoom(v, 2, order=1) / 255 - 128 / 255
    yy = y / 255
    r = yy + 1.5748 * cr
    b = yy + 1.8556 * cb
    g = (yy - 0.2126 * r - 0.0722 * b) / 0.7152
    expected = np.clip(np.stack([r, g, b]), 0, 1)
    np.testing.assert_allclose(ours.numpy(), expected, atol=1e-5)


def test_bicubic_upsampling_is_compressai_yuv_420_to_444(planes):
    functional = pytest.importorskip("compressai.transforms.functional")
    y, u, v = (torch.from_numpy(p[:1].astype(np.float32))[:, None] for p in planes)
    _, cb, cr = functional.yuv_420_to_444((y, u, v), mode="bicubic", return_tuple=True)
    ours = yuv420_to_rgb(*(p[:1] for p in planes), ColourSpec("bt709", "full", "bicubic", None))
    yy, cb, cr = y[:, 0] / 255, (cb[:, 0] - 128) / 255, (cr[:, 0] - 128) / 255
    r, b = yy + 1.5748 * cr, yy + 1.8556 * cb
    g = (yy - 0.2126 * r - 0.0722 * b) / 0.7152
    torch.testing.assert_close(ours, torch.stack([r, g, b], 1).clamp(0, 1), atol=1e-5, rtol=0)


def test_10bit_conversion_agrees_with_the_8bit_source(clip_dir, planes):
    # ffmpeg widens 8-bit codes to 10 bits exactly (x4), so both must give the same RGB.
    planes10 = stack_planes(clip_dir / "a10.yuv", "yuv420p10le")
    np.testing.assert_array_equal(planes10[0], planes[0].astype(np.uint16) * 4)
    for spec in (ColourSpec(rgb_bits=None), ColourSpec("bt709", "full", "bilinear", None)):
        a = yuv420_to_rgb(*planes, spec)
        b = yuv420_to_rgb(*planes10, spec, bit_depth=10)
        tol = 1e-6 if spec.range == "limited" else 2.5 / 1023  # full range: 255 and 1023 are not a x4 pair
        torch.testing.assert_close(a, b, atol=tol, rtol=0)


# Worst case of half a code of error in Y, Cb and Cr, in 8-bit RGB levels: 0.5 * (luma gain + largest chroma gain sum),
# e.g. BT.601 limited B = 1.164 dY + 2.017 dCb; BT.709 full B = dY + 1.8556 dCb. 10-bit codes are 4x finer.
@pytest.mark.parametrize("spec, bound8", [(BT601, 0.5 * (255 / 219 + 255 / 224 * 1.772)),
                                          (BT709, 0.5 * (1 + 1.8556))])
@pytest.mark.parametrize("bits", [8, 10])
def test_rgb_yuv_rgb_round_trip(spec, bound8, bits):
    # RGB constant over 2x2 blocks survives 4:2:0 (point sampling or 2x2 mean, then nearest upsampling) up to rounding.
    torch.manual_seed(0)
    rgb = torch.rand(2, 3, 16, 16).repeat_interleave(2, -2).repeat_interleave(2, -1)
    yuv = rgb_to_yuv420(rgb, spec, bit_depth=bits)
    back = yuv420_to_rgb(*yuv, ColourSpec(spec.matrix, spec.range, "nearest", None), bit_depth=bits)
    error = levels(back - rgb).abs().max()
    assert error <= bound8 * 2 ** (8 - bits)
    assert error > 0.2 * 2 ** (8 - bits)  # the codes really are quantised


def test_yuv_rgb_yuv_round_trip_on_real_frames(planes):
    # Real 4:2:0 frames -> float RGB -> 4:2:0 (point-sampled chroma) gives back the codes, except where RGB clips.
    rgb = yuv420_to_rgb(*planes, ColourSpec(rgb_bits=None))
    y, u, v = rgb_to_yuv420(rgb, BT601)
    for got, ref in zip((y, u, v), planes):
        diff = (got.numpy().astype(int) - ref).__abs__()
        assert (diff == 0).mean() > 0.99 and diff.max() <= 8


def test_odd_sizes_and_batch_dimensions(planes):
    y, u, v = (torch.from_numpy(p[:2]) for p in planes)
    for f in ("nearest", "bilinear", "bicubic"):
        spec = ColourSpec(filter=f)
        full = yuv420_to_rgb(y, u, v, spec)
        odd = yuv420_to_rgb(y[..., :H - 1, :W - 1], u, v, spec)
        assert full.shape == (2, 3, H, W) and odd.shape == (2, 3, H - 1, W - 1)
        if f == "nearest":
            torch.testing.assert_close(odd, full[..., :H - 1, :W - 1], atol=0, rtol=0)
        single = yuv420_to_rgb(y[1], u[1], v[1], spec)
        torch.testing.assert_close(single, full[1], atol=0, rtol=0)


def test_ffmpeg_rgb_to_yuv_matches_the_torch_matrix_for_luma():
    torch.manual_seed(2)
    rgb = torch.rand(3, 16, 32)
    for spec in (BT601, BT709):
        ours = rgb_to_yuv420(rgb, spec)
        theirs = rgb_to_yuv420(rgb, ColourSpec(spec.matrix, spec.range, "ffmpeg"))
        assert theirs[0].shape == (16, 32) and theirs[1].shape == (8, 16)
        assert (ours[0] - theirs[0]).abs().max() <= 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_gives_the_cpu_result(planes):
    for spec in (BT601, BT709):
        cpu = yuv420_to_rgb(*planes, spec)
        gpu = yuv420_to_rgb(*planes, spec, device="cuda")
        assert gpu.device.type == "cuda"
        torch.testing.assert_close(gpu.cpu(), cpu, atol=1 / 255 + 1e-6, rtol=0)


def test_mismatched_planes_and_bit_depths_are_rejected(planes):
    y, u, v = (p[0] for p in planes)
    with pytest.raises(InputError, match=r"a 256x128 luma plane needs 128x64 chroma planes, got \(128, 128\)"):
        yuv420_to_rgb(y, np.concatenate([u, u]), v)
    with pytest.raises(InputError, match="bit depth must be 8 or 10, got 12"):
        yuv420_to_rgb(y, u, v, bit_depth=12)


@pytest.mark.parametrize("matrix", ["bt601", "bt709"])
def test_yuv444_matches_ffmpeg_and_round_trips_at_10_bit(clip_dir, matrix):
    spec = BT601 if matrix == "bt601" else BT709
    rgb8 = yuv420_to_rgb(*stack_planes(clip_dir / "a.yuv", "yuv420p"), spec)[:2]
    # ffmpeg's own RGB -> 4:4:4 10-bit conversion of the same 8-bit RGB frames is the independent reference.
    (clip_dir / "rgb.raw").write_bytes((rgb8 * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy().tobytes())
    out_tags = [] if matrix == "bt601" else ["-colorspace", "bt709", "-color_range", "pc"]
    ffmpeg("-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{W}x{H}", "-i", clip_dir / "rgb.raw", *out_tags,
           "-sws_flags", "accurate_rnd+full_chroma_int", "-f", "rawvideo", "-pix_fmt", "yuv444p10le",
           clip_dir / "ref444.yuv")
    ref = torch.from_numpy(np.fromfile(clip_dir / "ref444.yuv", "<u2").astype(np.int32)).view(2, 3, H, W)
    y, u, v = rgb_to_yuv444(rgb8, spec, bit_depth=10)
    ours = torch.stack([y, u, v], dim=1).to(torch.int32)
    assert (ours - ref).abs().max() <= 2
    # 10-bit 4:4:4 keeps 8-bit RGB: back to 8 bits it is the same frame.
    assert torch.equal(yuv444_to_rgb(y, u, v, spec, bit_depth=10), rgb8)
    assert torch.equal(y, rgb_to_yuv420(rgb8, spec, bit_depth=10)[0])
