"""Frame distortion metrics in the official protocol: on cropped RGB in [0, 1], per frame.

PSNR-RGB is 10*log10(1/mse) with the MSE over all 3*H*W values; MS-SSIM-RGB is pytorch-msssim's MS_SSIM with its
defaults (per channel, then the channel mean). Averaging over frames, GOPs and sequences belongs to the analysis stage.
MS-SSIM on a GPU turns TensorFloat-32 off for the process (PyTorch lets cuDNN use it by default): its window
convolutions are float32 wherever they run, as `hytip.load` makes the codec's.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from pytorch_msssim import ms_ssim

# pytorch-msssim's 5-scale MS-SSIM with an 11-tap window needs this many pixels on the short side.
MSSSIM_MIN_SIDE = 161


def _check_pair(x: torch.Tensor, ref: torch.Tensor) -> None:
    if x.shape != ref.shape or x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"metrics need two [N,3,H,W] tensors of equal shape, got {tuple(x.shape)} and {tuple(ref.shape)}")


def psnr_rgb(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB for [N,3,H,W] tensors in [0,1]; inf where identical."""
    _check_pair(x, ref)
    mse = (x.double() - ref.double()).pow(2).mean(dim=(1, 2, 3))
    return 10 * torch.log10(1 / mse)


def _float32_convolutions(x: torch.Tensor) -> None:
    if x.is_cuda:
        torch.backends.cudnn.allow_tf32 = False


def msssim_rgb(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Per-image MS-SSIM for [N,3,H,W] tensors in [0,1]; NaN when the frame is too small for 5 scales."""
    _check_pair(x, ref)
    if min(x.shape[-2:]) < MSSSIM_MIN_SIDE:
        return torch.full((x.shape[0],), math.nan, dtype=torch.float64)
    _float32_convolutions(x)
    return ms_ssim(x.float(), ref.float(), data_range=1.0, size_average=False).double()



def psnr_plane(x: np.ndarray, ref: np.ndarray, peak: int) -> float:
    """PSNR in dB of one integer sample plane (Y, U or V) against its reference, peak = 2**bits - 1."""
    mse = np.mean((x.astype(np.float64) - ref.astype(np.float64)) ** 2)
    return 10 * math.log10(peak * peak / mse) if mse > 0 else math.inf


def msssim_plane(x: np.ndarray, ref: np.ndarray, peak: int, device: str | torch.device = "cpu") -> float:
    """MS-SSIM of one integer sample plane, scaled to [0, 1] by `peak`; NaN when too small for 5 scales."""
    if min(x.shape) < MSSSIM_MIN_SIDE:
        return math.nan
    planes = [torch.from_numpy(a.astype(np.float32) / peak)[None, None].to(device) for a in (x, ref)]
    _float32_convolutions(planes[0])
    return float(ms_ssim(planes[0], planes[1], data_range=1.0, size_average=False))
