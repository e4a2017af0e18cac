"""YUV 4:2:0 <-> RGB conversion with an explicit, recorded protocol (matrix, range, chroma filter).

Everything works on whole frames in torch, so it runs unchanged on CUDA; leading batch dimensions are allowed.
The 'ffmpeg' filter instead pipes the planes through the ffmpeg binary of imageio-ffmpeg and returns its swscale result.

Defaults (ColourSpec.for_protocol) and why:
- BT.601, limited range, 'nearest'. The official PNG folders were made outside the repository; the usual tool is
  ffmpeg's default yuv420p -> rgb24 conversion (BT.601 limited range, which the official RGB->YUV matrix
  0.257/0.504/0.098 confirms). For 8-bit 4:2:0 -> rgb24 swscale takes its unscaled fast path, which repeats each chroma
  sample over its 2x2 block, i.e. 'nearest'. Measured with ffmpeg 9.0 on Big Buck Bunny frames: 'nearest' is within
  3 levels of ffmpeg (46 dB; ffmpeg's fixed-point tables read about one level darker on average), 'bilinear' and
  'bicubic' are up to 32 and 22 levels off (42 dB). 'nearest' is also what the official YUV dump uses. The 'ffmpeg'
  filter reproduces such PNGs bit-exactly, at about a tenth of the speed.
- BT.709, full range, 'bilinear': DCVC's test conditions ("BT.709 full range to convert YUV420 to RGB"); DCVC-DC/FM
  make their PNGs with scipy.ndimage.zoom(order=1) on the chroma, which 'bilinear' reproduces.
RGB->YUV: BT.601 point-samples the top-left chroma of each 2x2 block ('nearest', as the official RGB2YUV420_v2),
BT.709 averages each 2x2 block ('bilinear', as the official rgb2ycbcr420 and DCVC).

Full range follows ITU-T H.273 and ffmpeg: chroma is centred on 2**(bits-1). DCVC's own code centres it on
(2**bits-1)/2, half a code lower, which shifts R and B by under one 8-bit level. The official BT.601 RGB->YUV adds
16/256 rather than 16/255 (0.06 level); we use the standard offsets.
"""
from __future__ import annotations

import subprocess
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from bench.data.readers import ffmpeg_exe, split_yuv420
from bench.errors import InputError

KR_KB = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722)}  # ITU-R BT.601 / BT.709 luma weights
RANGES = ("limited", "full")
FILTERS = ("nearest", "bilinear", "bicubic", "ffmpeg")
RGB_BITS = (8, 16, None)
FFMPEG_MATRIX = {"bt601": "bt470bg", "bt709": "bt709"}


@dataclass(frozen=True)
class ColourSpec:
    """How YUV maps to RGB. Every result records `describe()`.

    filter, upsampling 4:2:0 -> 4:4:4 (each reproduces a named tool):
      'nearest'  repeats each chroma sample over its 2x2 block (ffmpeg's default conversion, official HyTIP dump);
      'bilinear' corner-aligned linear interpolation = scipy.ndimage.zoom(order=1) (DCVC-DC/FM ycbcr420_to_rgb);
      'bicubic'  torch bicubic, align_corners=False (CompressAI's video evaluation);
      'ffmpeg'   ffmpeg's own swscale conversion of the planes; only 8-bit input to 8-bit RGB takes the 'nearest'
                 fast path, other bit depths go through swscale's interpolating scaler.
    filter, downsampling 4:4:4 -> 4:2:0: 'nearest' top-left sample, 'bilinear' 2x2 mean, 'bicubic' torch bicubic,
      'ffmpeg' swscale.
    rgb_bits: RGB is rounded to this many bits (8 = what a PNG frame holds, as the official protocol reads);
      None keeps full float precision.
    """

    matrix: str = "bt601"
    range: str = "limited"
    filter: str = "nearest"
    rgb_bits: int | None = 8

    def __post_init__(self):
        for name, value, allowed in (("matrix", self.matrix, tuple(KR_KB)), ("range", self.range, RANGES),
                                     ("filter", self.filter, FILTERS), ("rgb_bits", self.rgb_bits, RGB_BITS)):
            if value not in allowed:
                raise InputError(f"colour spec: {name} {value!r} is not one of {allowed}")

    @classmethod
    def for_protocol(cls, name: str) -> "ColourSpec":
        """The conversion of the official `--color_transform` setting: 'BT601' or 'BT709'."""
        specs = {"BT601": cls("bt601", "limited", "nearest"), "BT709": cls("bt709", "full", "bilinear")}
        if name not in specs:
            raise InputError(f"colour protocol {name!r} is not one of {sorted(specs)}")
        return specs[name]

    def describe(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        bits = "float" if self.rgb_bits is None else f"{self.rgb_bits}-bit"
        return f"{self.matrix.upper()} {self.range} range, {self.filter} chroma, RGB {bits}"


def _check_depth(bit_depth: int) -> None:
    if bit_depth not in (8, 10):
        raise InputError(f"colour conversion: YUV bit depth must be 8 or 10, got {bit_depth}")


def _levels(spec: ColourSpec, bit_depth: int) -> tuple[float, float, float, float]:
    """(luma offset, luma scale, chroma offset, chroma scale) mapping codes to Y in [0,1] and Cb/Cr in [-0.5,0.5]."""
    step = 1 << (bit_depth - 8)
    if spec.range == "limited":
        return 16 * step, 219 * step, 128 * step, 224 * step
    top = (1 << bit_depth) - 1
    return 0.0, top, 1 << (bit_depth - 1), top


def _rgb_weights(matrix: str) -> tuple[float, float, float, float]:
    """R = Y + vr*Cr, G = Y + ug*Cb + vg*Cr, B = Y + ub*Cb (Cb, Cr in [-0.5, 0.5])."""
    kr, kb = KR_KB[matrix]
    kg = 1 - kr - kb
    return 2 * (1 - kr), -2 * kb * (1 - kb) / kg, -2 * kr * (1 - kr) / kg, 2 * (1 - kb)


def _as_tensor(plane, device) -> torch.Tensor:
    if isinstance(plane, np.ndarray):
        # 10-bit samples (<= 1023) fit int16, which torch handles everywhere; the view costs no copy.
        plane = torch.from_numpy(plane.view(np.int16) if plane.dtype == np.uint16 else np.ascontiguousarray(plane))
    return plane.to(device)


def _upsample(c: torch.Tensor, mode: str, size: tuple[int, int]) -> torch.Tensor:
    """(..., C, h, w) chroma -> (..., C, *size), the 2x upsampling of `mode` cropped to the luma size."""
    c4 = c.reshape(-1, *c.shape[-3:])
    if mode == "nearest":
        up = c4.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)
    elif mode == "bilinear":
        up = F.interpolate(c4, size=(2 * c.shape[-2], 2 * c.shape[-1]), mode="bilinear", align_corners=True)
    else:
        up = F.interpolate(c4, scale_factor=2, mode="bicubic", align_corners=False)
    return up[..., :size[0], :size[1]].reshape(*c.shape[:-2], *size)


def yuv420_to_rgb(y, u, v, spec: ColourSpec = ColourSpec(), *, bit_depth: int = 8,
                  device: str | torch.device | None = None) -> torch.Tensor:
    """YUV 4:2:0 codes (numpy or torch, shape (..., H, W) and (..., ceil(H/2), ceil(W/2))) -> float32 RGB
    of shape (..., 3, H, W) in [0, 1], on `device` (default: where the planes are; numpy -> CPU)."""
    _check_depth(bit_depth)
    height, width = y.shape[-2:]
    chroma = ((height + 1) // 2, (width + 1) // 2)
    if tuple(u.shape[-2:]) != chroma or tuple(v.shape[-2:]) != chroma:
        raise InputError(f"4:2:0 planes: a {width}x{height} luma plane needs {chroma[1]}x{chroma[0]} chroma planes, "
                         f"got {tuple(u.shape[-2:])[::-1]} and {tuple(v.shape[-2:])[::-1]} (width x height)")
    if spec.filter == "ffmpeg":
        return _ffmpeg_yuv420_to_rgb(y, u, v, spec, bit_depth).to(device or "cpu")
    y, u, v = (_as_tensor(p, device) for p in (y, u, v))
    yoff, yscale, coff, cscale = _levels(spec, bit_depth)
    vr, ug, vg, ub = _rgb_weights(spec.matrix)
    # Work in output units (255 for 8-bit RGB) so that rounding needs no extra rescale.
    unit = 1.0 if spec.rgb_bits is None else float((1 << spec.rgb_bits) - 1)
    ky = unit / yscale
    cb = u.to(torch.float32).sub_(coff).mul_(unit / cscale)
    cr = v.to(torch.float32).sub_(coff).mul_(unit / cscale)
    out = torch.empty((*y.shape[:-2], 3, height, width), dtype=torch.float32, device=y.device)
    rgb = out.unbind(-3)
    yf = y.to(torch.float32)
    if spec.filter == "nearest" and height % 2 == 0 and width % 2 == 0:
        # The default path: chroma terms (with the luma offset folded in) at chroma resolution, widened to full width
        # and broadcast over each pair of rows, so no full-size chroma plane is made; R = ky*Y + term_r and so on.
        # (Broadcasting over whole rows keeps the inner loop contiguous: about twice as fast as over 2x2 blocks.)
        terms = (cr * vr - yoff * ky, cb * ug + cr * vg - yoff * ky, cb * ub - yoff * ky)
        rows = (*y.shape[:-2], height // 2, 2, width)
        yr = yf.view(rows)
        for channel, term in zip(rgb, terms):
            wide = term.unsqueeze(-1).expand(*term.shape, 2).reshape(*term.shape[:-1], 1, width)
            torch.add(wide, yr, alpha=ky, out=channel.view(rows))
    else:
        cb, cr = _upsample(torch.stack([cb, cr], dim=-3), spec.filter, (height, width)).unbind(-3)
        yk = yf.mul_(ky).sub_(yoff * ky)
        torch.add(yk, cr, alpha=vr, out=rgb[0])
        torch.add(yk, cb, alpha=ug, out=rgb[1]).add_(cr, alpha=vg)
        torch.add(yk, cb, alpha=ub, out=rgb[2])
    out.clamp_(0, unit)
    if spec.rgb_bits is not None:
        out.round_().div_(unit)
    return out


def frame_to_rgb(frame, spec: ColourSpec, *, bit_depth: int, device: str | torch.device | None = None) -> torch.Tensor:
    """One reader frame -> float32 RGB (3, H, W) in [0, 1].

    YUV planes go through `spec`. Native RGB (PNG folders, 10-bit RGB files) ignores the matrix and range: it is scaled
    to [0, 1] and, where `spec.rgb_bits` is below its own depth, rounded as an 8-bit PNG export stores it.
    """
    if isinstance(frame, tuple):
        return yuv420_to_rgb(*frame, spec, bit_depth=bit_depth, device=device)
    rgb = torch.from_numpy(np.ascontiguousarray(frame.transpose(2, 0, 1)).astype(np.float32)).to(device)
    rgb /= (1 << bit_depth) - 1
    if spec.rgb_bits is not None and spec.rgb_bits < bit_depth:
        unit = (1 << spec.rgb_bits) - 1
        rgb = rgb.mul_(unit).round_().div_(unit)
    return rgb


def _ycbcr(rgb: torch.Tensor, matrix: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """RGB in [0, 1] -> Y in [0, 1] and Cb, Cr in [-0.5, 0.5]."""
    kr, kb = KR_KB[matrix]
    r, g, b = rgb.unbind(-3)
    luma = kr * r + (1 - kr - kb) * g + kb * b
    return luma, (b - luma) / (2 * (1 - kb)), (r - luma) / (2 * (1 - kr))


def _codes(luma, chroma, spec: ColourSpec, bit_depth: int):
    """Y and stacked (Cb, Cr) in signal units -> rounded, clipped int16 codes."""
    yoff, yscale, coff, cscale = _levels(spec, bit_depth)
    top = (1 << bit_depth) - 1
    y = (luma * yscale + yoff).round_().clamp_(0, top).to(torch.int16)
    cb, cr = (chroma * cscale + coff).round_().clamp_(0, top).to(torch.int16).unbind(-3)
    return y, cb, cr


def rgb_to_yuv444(rgb: torch.Tensor, spec: ColourSpec = ColourSpec(), *, bit_depth: int = 8):
    """Float RGB (..., 3, H, W) in [0, 1] -> full-resolution (y, u, v) integer codes as torch int16 tensors
    (the filter does not apply: nothing is resampled)."""
    _check_depth(bit_depth)
    luma, cb, cr = _ycbcr(rgb, spec.matrix)
    return _codes(luma, torch.stack([cb, cr], dim=-3), spec, bit_depth)


def yuv444_to_rgb(y, u, v, spec: ColourSpec = ColourSpec(), *, bit_depth: int = 8,
                  device: str | torch.device | None = None) -> torch.Tensor:
    """Full-resolution YUV codes (..., H, W) -> float32 RGB (..., 3, H, W) in [0, 1], rounded to spec.rgb_bits."""
    _check_depth(bit_depth)
    y, u, v = (_as_tensor(p, device).to(torch.float32) for p in (y, u, v))
    yoff, yscale, coff, cscale = _levels(spec, bit_depth)
    vr, ug, vg, ub = _rgb_weights(spec.matrix)
    luma, cb, cr = (y - yoff) / yscale, (u - coff) / cscale, (v - coff) / cscale
    rgb = torch.stack([luma + vr * cr, luma + ug * cb + vg * cr, luma + ub * cb], dim=-3).clamp_(0, 1)
    if spec.rgb_bits is not None:
        unit = (1 << spec.rgb_bits) - 1
        rgb = rgb.mul_(unit).round_().div_(unit)
    return rgb


def rgb_to_yuv420(rgb: torch.Tensor, spec: ColourSpec = ColourSpec(), *, bit_depth: int = 8):
    """Float RGB (..., 3, H, W) in [0, 1] -> (y, u, v) integer codes as torch int16 tensors (uint8 range for 8-bit),
    rounded to nearest and clipped to the code range; chroma planes are (..., ceil(H/2), ceil(W/2))."""
    _check_depth(bit_depth)
    if spec.filter == "ffmpeg":
        return _ffmpeg_rgb_to_yuv420(rgb, spec, bit_depth)
    luma, cb, cr = _ycbcr(rgb, spec.matrix)
    height, width = luma.shape[-2:]
    chroma = torch.stack([cb, cr], dim=-3)
    if height % 2 or width % 2:  # replicate the last row/column so every 2x2 block is complete
        chroma = F.pad(chroma.reshape(-1, 2, height, width), (0, width % 2, 0, height % 2), mode="replicate")
        chroma = chroma.reshape(*luma.shape[:-2], 2, *chroma.shape[-2:])
    c4 = chroma.reshape(-1, 2, *chroma.shape[-2:])
    if spec.filter == "nearest":
        c4 = c4[..., ::2, ::2]
    elif spec.filter == "bilinear":
        c4 = F.avg_pool2d(c4, 2)
    else:
        c4 = F.interpolate(c4, scale_factor=0.5, mode="bicubic", align_corners=False)
    return _codes(luma, c4.reshape(*luma.shape[:-2], 2, *c4.shape[-2:]), spec, bit_depth)


def _ffmpeg_convert(data: bytes, width: int, height: int, src: str, dst: str, spec: ColourSpec, tags_on_input: bool):
    range_tag = {"limited": "tv", "full": "pc"}[spec.range]
    tags = ["-colorspace", FFMPEG_MATRIX[spec.matrix], "-color_range", range_tag]
    cmd = [ffmpeg_exe(), "-v", "error", "-nostdin", "-f", "rawvideo", "-pix_fmt", src, "-s", f"{width}x{height}",
           *(tags if tags_on_input else []), "-i", "-", *([] if tags_on_input else tags),
           "-f", "rawvideo", "-pix_fmt", dst, "-"]
    result = subprocess.run(cmd, input=data, capture_output=True)
    if result.returncode:
        raise InputError(f"ffmpeg could not convert {src} -> {dst}: {result.stderr.decode(errors='replace')[-300:]}")
    return result.stdout


def _ffmpeg_yuv420_to_rgb(y, u, v, spec: ColourSpec, bit_depth: int) -> torch.Tensor:
    planes = [p.cpu().numpy() if isinstance(p, torch.Tensor) else p for p in (y, u, v)]
    dtype = "<u2" if bit_depth > 8 else np.uint8
    height, width = planes[0].shape[-2:]
    lead = planes[0].shape[:-2]
    count = int(np.prod(lead))
    frames = [np.concatenate([p.reshape(count, -1)[i].astype(dtype) for p in planes]) for i in range(count)]
    src = "yuv420p10le" if bit_depth == 10 else "yuv420p"
    dst, out_dtype = {8: ("rgb24", np.uint8), 16: ("rgb48le", "<u2"), None: ("gbrpf32le", "<f4")}[spec.rgb_bits]
    raw = np.frombuffer(_ffmpeg_convert(b"".join(f.tobytes() for f in frames), width, height, src, dst, spec, True),
                        dtype=out_dtype)
    if spec.rgb_bits is None:  # planar G, B, R
        g, b, r = torch.from_numpy(raw.copy()).view(count, 3, height, width).unbind(1)
        rgb = torch.stack([r, g, b], dim=1)
    else:
        scale = float((1 << spec.rgb_bits) - 1)
        rgb = torch.from_numpy(raw.astype(np.float32)).view(count, height, width, 3).permute(0, 3, 1, 2) / scale
    return rgb.reshape(*lead, 3, height, width).contiguous()


def _ffmpeg_rgb_to_yuv420(rgb: torch.Tensor, spec: ColourSpec, bit_depth: int):
    height, width = rgb.shape[-2:]
    lead = rgb.shape[:-3]
    planar = rgb.detach().cpu().reshape(-1, 3, height, width).to(torch.float32)
    gbr = planar[:, [1, 2, 0]].contiguous().numpy().astype("<f4")
    dst = "yuv420p10le" if bit_depth == 10 else "yuv420p"
    raw = _ffmpeg_convert(gbr.tobytes(), width, height, "gbrpf32le", dst, spec, False)
    codes = np.frombuffer(raw, dtype="<u2" if bit_depth > 8 else np.uint8).astype(np.int16)
    frames = [split_yuv420(f, width, height) for f in codes.reshape(planar.shape[0], -1)]
    return tuple(torch.from_numpy(np.stack(p)).reshape(*lead, *p[0].shape) for p in zip(*frames))
