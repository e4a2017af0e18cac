"""Probability models with parameters in the HyTIP state dict, and the rate estimate.

* ``BitEstimator``: the factorized density (Ballé 2018) used for every hyper-latent z. The intra and the
  P-frame versions have the same parameters ([1, C, 1, 1] each; the P-frame one has a qp axis of size 1 that
  is always indexed at 0), so one class serves both.
* ``GaussianConditional``: CompressAI's layer (its eval quantiser, likelihood and CDF tables are those of the
  release), with the release's 64-level scale table built by ``update()``.
* ``estimate_bpp``: the official ``util/estimate_bpp``.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from compressai.entropy_models import GaussianConditional as _CompressAIGaussianConditional

LIKELIHOOD_BOUND = 1e-9
# Support search of the factorized tables: |z| up to 50, tails below 1e-4 (SPEC §5.2).
_SUPPORT_MAX = 50
_TAIL = 1e-4


class _BitParm(nn.Module):
    def __init__(self, channels: int, final: bool = False):
        super().__init__()
        self.h = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.b = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.a = None if final else nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x):
        x = x * F.softplus(self.h) + self.b
        return x if self.a is None else x + torch.tanh(x) * torch.tanh(self.a)


class BitEstimator(nn.Module):
    """Per-channel factorized CDF; keys ``f1..f4.{h,b}`` and ``f1..f3.a`` (11 entries)."""

    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels
        self.f1 = _BitParm(channels)
        self.f2 = _BitParm(channels)
        self.f3 = _BitParm(channels)
        self.f4 = _BitParm(channels, final=True)

    def cdf(self, x: torch.Tensor) -> torch.Tensor:
        """CDF at ``x`` ([N, C, H, W], channel-wise)."""
        return torch.sigmoid(self.f4(self.f3(self.f2(self.f1(x)))))

    forward = cdf

    def likelihood(self, z_hat: torch.Tensor) -> torch.Tensor:
        """P(z_hat) = cdf(z_hat + ½) − cdf(z_hat − ½); the median is taken as 0 and not subtracted."""
        return self.cdf(z_hat + 0.5) - self.cdf(z_hat - 0.5)

    @torch.no_grad()
    def pmf_table(self) -> dict:
        """Per-channel discrete pmf for building entropy-coder tables (the release's ``update()`` arithmetic).

        Support is ``[-m, M]``: m is the smallest i in 2..50 with cdf(−i) < 1e-4 (50 if none), M the smallest
        i in 2..50 with cdf(i) > 0.9999. Returns float32 ``pmf`` [C, L] (L = max length; row c is valid up to
        ``pmf_length[c]``), ``tail_mass`` [C, 1], int32 ``pmf_length`` [C] and ``offset`` [C] (= −m). As in the
        release, the upper tail is read at column L−1 for every channel, not at the channel's own end.
        """
        p = next(self.parameters())
        c = self.channels
        ii = torch.arange(2, _SUPPORT_MAX + 1, device=p.device, dtype=p.dtype)          # [K]
        grid = ii.view(1, 1, 1, -1).expand(1, c, 1, -1)                                    # [1, C, 1, K]
        below = self.cdf(-grid)[0, :, 0] < _TAIL                                           # [C, K]
        above = self.cdf(grid)[0, :, 0] > 1.0 - _TAIL
        big = torch.full_like(ii, _SUPPORT_MAX).expand(c, -1)
        minima = torch.where(below, ii.expand(c, -1), big).amin(1).to(torch.int32)
        maxima = torch.where(above, ii.expand(c, -1), big).amin(1).to(torch.int32)
        pmf_length = minima + maxima + 1
        max_length = int(pmf_length.max())
        samples = torch.arange(max_length, device=p.device, dtype=p.dtype).view(1, 1, 1, -1) \
            - minima.to(p.dtype).view(1, c, 1, 1)                                          # [1, C, 1, L]
        lower = self.cdf(samples - 0.5)[0, :, 0]
        upper = self.cdf(samples + 0.5)[0, :, 0]
        return {
            "pmf": upper - lower,
            "tail_mass": lower[:, :1] + (1.0 - upper[:, -1:]),
            "pmf_length": pmf_length,
            "offset": -minima,
        }


def gaussian_scale_table(device=None) -> torch.Tensor:
    """The P-frame coders' 64 scales exp(linspace(ln 0.11, ln 256, 64)), float32 as the release builds them."""
    return torch.exp(torch.linspace(math.log(0.11), math.log(256.0), 64, device=device))


class GaussianConditional(_CompressAIGaussianConditional):
    """CompressAI GaussianConditional with the release's settings: σ floor 0.11, tail mass 1e-9, likelihood
    floor 1e-9. Eval ``forward(y, scales, means)`` returns (round(y−μ)+μ, likelihood).

    ``update()`` installs the 64-level scale table and builds ``_quantized_cdf`` / ``_offset`` /
    ``_cdf_length`` (CompressAI's ``pmf_to_quantized_cdf``); ``build_indexes(scales)`` gives CDF indexes.
    """

    _TABLE_BUFFERS = ("_offset", "_quantized_cdf", "_cdf_length", "scale_table")

    def __init__(self):
        super().__init__(None)

    def update(self) -> None:
        self.scale_table = gaussian_scale_table(self.scale_bound.device)
        super().update()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Trainer-saved checkpoints hold these tables empty, updated ones hold them filled; either is valid,
        # and update() rebuilds them anyway, so take whatever size the checkpoint has.
        for name in self._TABLE_BUFFERS:
            key = prefix + name
            if key in state_dict:
                current = getattr(self, name)
                setattr(self, name, current.new_empty(state_dict[key].shape, dtype=state_dict[key].dtype))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def estimate_bpp(likelihoods, num_pixels: int) -> torch.Tensor:
    """The release's rate estimate: Σ over tensors of Σ −log2(max(p, 1e-9)), divided by ``num_pixels``
    (the *cropped* frame area). Returns one value per batch item, float32 like the release."""
    if torch.is_tensor(likelihoods):
        likelihoods = [likelihoods]
    total = 0
    for p in likelihoods:
        total = total + torch.clamp_min(p, LIKELIHOOD_BOUND).log().flatten(1).sum(1)
    return total / (-math.log(2.0) * num_pixels)
