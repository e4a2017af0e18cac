"""The HyTIP I-frame coder: DCVC-DC's intra model without autoregression (SPEC §2).

``IntraCoder`` (registered as ``if_model`` in the top-level model) pads the frame to a multiple of 64 and
holds ``net`` (``IntraNet``), whose parameters are the checkpoint's ``if_model.net.*``.

The y latent is coded in four steps (the "four-part prior"): y splits into 4 channel groups of 64 and every
step codes, in each group, the positions of one 2x2 parity; ``STEP_PARITIES[k][g]`` is the parity that group g
codes at step k. Step 0 uses the hyperprior's (σ, μ); steps 1-3 get theirs from the spatial prior applied to
everything decoded so far. Each step's symbols (and σ) are folded into one 64-channel tensor, the four groups
filling disjoint positions; that is what the entropy coder receives.

Arithmetic follows the release bit for bit where it matters for encoder/decoder agreement: ``y / q_step``
(a true division, unlike the P-frame coders), ŷ = round(y − μ) + μ at the masked positions, and σ/μ for later
steps computed from the same masked sums on both sides.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn as nn

from .entropy_models import BitEstimator
from .errors import HytipError
from .gop import pad_to_multiple
from .layers import DCB, RBS, RBU, UNet, conv, lrelu

N = 256
PAD = 64            # the intra coder works on frames padded to a multiple of 64
Q_LEVELS = 64       # quality indexes 0..63, geometric between anchors 0 and 3
# STEP_PARITIES[k][g] = parity index (0:(0,0), 1:(0,1), 2:(1,0), 3:(1,1) as (row, col)) of group g at step k.
STEP_PARITIES = ((0, 1, 2, 3), (3, 2, 1, 0), (2, 3, 0, 1), (1, 0, 3, 2))
_PARITY_RC = ((0, 0), (0, 1), (1, 0), (1, 1))


class IntraInputError(HytipError):
    """Bad input to the intra coder (shape, quality index, state)."""


def step_mask(step: int, height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """[1, 4·64, H, W] 0/1 mask of the positions coded at ``step`` (group g takes STEP_PARITIES[step][g])."""
    rows = torch.arange(height, device=like.device).view(-1, 1) % 2
    cols = torch.arange(width, device=like.device).view(1, -1) % 2
    parts = []
    for parity in STEP_PARITIES[step]:
        r, c = _PARITY_RC[parity]
        parts.append(((rows == r) & (cols == c)).to(like.dtype).expand(N // 4, -1, -1))
    return torch.cat(parts, 0).unsqueeze(0)


def fold(t: torch.Tensor) -> torch.Tensor:
    """Sum the 4 channel groups of a masked [B, 256, H, W] step tensor into [B, 64, H, W] (disjoint supports)."""
    b, c, h, w = t.shape
    return t.view(b, 4, c // 4, h, w).sum(1)


class _Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc_1 = nn.Sequential(RBS(3, 128), DCB(128, 128))
        self.enc_2 = nn.Sequential(RBS(128, 192), DCB(192, 192), RBS(192, N), DCB(N, N), conv(N, N, 3, 2))

    def forward(self, x, q_enc):
        return self.enc_2(self.enc_1(x) * q_enc)


class _Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.dec_1 = nn.Sequential(DCB(N, N), RBU(N, N), DCB(N, N), RBU(N, 192), DCB(192, 192), RBU(192, 128))
        self.dec_2 = nn.Sequential(DCB(128, 128), RBU(128, 16))

    def forward(self, y_hat, q_dec):
        return self.dec_2(self.dec_1(y_hat) * q_dec)


class IntraNet(nn.Module):
    """DCVC-DC intra network (``Intra_NoAR``, N=256). Inputs must already be padded to a multiple of 64."""

    def __init__(self, anchors: int = 4):
        super().__init__()
        self.enc = _Encoder()
        self.hyper_enc = nn.Sequential(DCB(N, N), conv(N, N, 3, 2), lrelu(0.01), conv(N, N, 3, 2))
        self.hyper_dec = nn.Sequential(RBU(N, N), RBU(N, N), DCB(N, N))
        self.y_prior_fusion = nn.Sequential(DCB(N, N * 2), DCB(N * 2, N * 3))
        self.y_spatial_prior_adaptor_1 = conv(N * 4, N * 3, 1)
        self.y_spatial_prior_adaptor_2 = conv(N * 4, N * 3, 1)
        self.y_spatial_prior_adaptor_3 = conv(N * 4, N * 3, 1)
        self.y_spatial_prior = nn.Sequential(DCB(N * 3, N * 3), DCB(N * 3, N * 2), DCB(N * 2, N * 2))
        self.dec = _Decoder()
        self.refine = nn.Sequential(UNet(16, 16, block=DCB), conv(16, 3, 3))
        self.bit_estimator_z = BitEstimator(N)
        self.q_basic_enc = nn.Parameter(torch.ones(1, 128, 1, 1))
        self.q_scale_enc = nn.Parameter(torch.ones(anchors, 1, 1, 1))
        self.q_basic_dec = nn.Parameter(torch.ones(1, 128, 1, 1))
        self.q_scale_dec = nn.Parameter(torch.ones(anchors, 1, 1, 1))
        # Built by interpolate() after loading; not part of the checkpoint.
        self.register_buffer("q_scale_enc_fine", torch.empty(0), persistent=False)
        self.register_buffer("q_scale_dec_fine", torch.empty(0), persistent=False)

    # ---- quality -------------------------------------------------------------------------------------
    @torch.no_grad()
    def interpolate(self) -> None:
        """64 quality scales, geometric between anchors 0 and the last (anchors in between are unused).

        As the release does: ln of the float32 anchors in float32, linspace and exp in float64, cast to float32.
        """
        for anchors, name in ((self.q_scale_enc, "q_scale_enc_fine"), (self.q_scale_dec, "q_scale_dec_fine")):
            lo, hi = torch.log(anchors.detach().flatten()[[0, -1]]).cpu().tolist()
            fine = np.exp(np.linspace(lo, hi, Q_LEVELS))
            setattr(self, name, torch.from_numpy(fine).to(torch.float32).to(anchors.device))

    def q_scales(self, q_index) -> tuple[torch.Tensor, torch.Tensor]:
        """(q_enc, q_dec), each [B or 1, 128, 1, 1], for quality index ``q_index`` (int or 1-D tensor)."""
        if self.q_scale_enc_fine.numel() != Q_LEVELS:
            raise IntraInputError("IntraNet.interpolate() must be called after loading weights")
        # Checked on the host as given; the rows are taken by slicing, so a GPU waits for no index value.
        values = (q_index.reshape(-1).tolist() if torch.is_tensor(q_index) else
                  list(q_index) if isinstance(q_index, (list, tuple)) else [q_index])
        if not values or not all(int(v) == v and 0 <= v < Q_LEVELS for v in values):
            raise IntraInputError(f"intra quality index must be in 0..{Q_LEVELS - 1}, got {q_index}")
        rows = [slice(int(v), int(v) + 1) for v in values]
        q_enc = self.q_basic_enc * torch.cat([self.q_scale_enc_fine[r] for r in rows]).view(-1, 1, 1, 1)
        q_dec = self.q_basic_dec * torch.cat([self.q_scale_dec_fine[r] for r in rows]).view(-1, 1, 1, 1)
        return q_enc, q_dec

    # ---- transforms ----------------------------------------------------------------------------------
    def hyper_params(self, z_hat: torch.Tensor, y_hw: tuple[int, int]) -> torch.Tensor:
        """Hyperprior output [B, 768, h, w] (q_step, σ, μ; 256 each) cropped to y's size."""
        params = self.y_prior_fusion(self.hyper_dec(z_hat))
        return params[..., :y_hw[0], :y_hw[1]]

    def step_params(self, step: int, y_hat_so_far: torch.Tensor, common: torch.Tensor):
        """(σ, μ), 256 channels each, for ``step`` (0: from the hyperprior; 1-3: spatial prior)."""
        if step == 0:
            _, scales, means = common.chunk(3, 1)
            return scales, means
        adaptor = (self.y_spatial_prior_adaptor_1, self.y_spatial_prior_adaptor_2,
                   self.y_spatial_prior_adaptor_3)[step - 1]
        out = self.y_spatial_prior(adaptor(torch.cat((y_hat_so_far, common), dim=1)))
        return out[:, :N], out[:, N:]

    @staticmethod
    def q_step(common: torch.Tensor) -> torch.Tensor:
        return torch.clamp_min(common[:, :N], 0.5)

    def synthesis(self, y_hat: torch.Tensor, q_dec: torch.Tensor) -> torch.Tensor:
        """Decoder + refinement; not clamped."""
        unet, conv_out = self.refine     # the U-Net takes its input in a list it empties (hytip.layers.UNet)
        return conv_out(unet([self.dec(y_hat, q_dec)]))

    def analysis(self, x: torch.Tensor, q_enc: torch.Tensor):
        """(y, z_hat, common params) for a 64-aligned frame."""
        y = self.enc(x, q_enc)
        z_hat = torch.round(self.hyper_enc(pad_to_multiple(y, 4)[0]))
        return y, z_hat, self.hyper_params(z_hat, y.shape[-2:])

    # ---- four-step y coding --------------------------------------------------------------------------
    def quantise_y(self, y: torch.Tensor, common: torch.Tensor) -> dict:
        """Encoder side of the four-step prior.

        Returns ``y_q`` (symbols round(y/q_step − μ), 256 ch), ``scales`` (σ per position, 256 ch), ``y_hat``
        (dequantised, ·q_step), and ``sym_steps`` / ``scale_steps`` (per step, folded to 64 ch).
        """
        q_step = self.q_step(common)
        y = y / q_step
        _, _, h, w = y.shape
        y_q = torch.zeros_like(y)
        scales_all = torch.zeros_like(y)
        y_hat_so_far = torch.zeros_like(y)
        sym_steps, scale_steps = [], []
        for k in range(4):
            scales, means = self.step_params(k, y_hat_so_far, common)
            m = step_mask(k, h, w, y)
            means_k = means * m
            q_k = torch.round((y - means_k) * m)
            y_hat_so_far = y_hat_so_far + (q_k + means_k)
            scales_k = scales * m
            y_q = y_q + q_k
            scales_all = scales_all + scales_k
            sym_steps.append(fold(q_k))
            scale_steps.append(fold(scales_k))
        return {"y_q": y_q, "scales": scales_all, "y_hat": y_hat_so_far * q_step,
                "sym_steps": sym_steps, "scale_steps": scale_steps}

    def dequantise_y(self, common: torch.Tensor,
                     decode_step: Callable[[int, torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """Decoder side: ``decode_step(k, scales64)`` returns step k's 64-channel symbols; returns ŷ·q_step."""
        q_step = self.q_step(common)
        b, _, h, w = common.shape
        y_hat_so_far = torch.zeros(b, N, h, w, dtype=common.dtype, device=common.device)
        for k in range(4):
            scales, means = self.step_params(k, y_hat_so_far, common)
            m = step_mask(k, h, w, common)
            sym = decode_step(k, fold(scales * m)).to(device=common.device, dtype=common.dtype)
            y_hat_so_far = y_hat_so_far + (sym.repeat(1, 4, 1, 1) + means) * m
        return y_hat_so_far * q_step

    # ---- entry points (64-aligned input) ---------------------------------------------------------------
    def _code(self, x: torch.Tensor, q_index):
        """One encoder pass: the four-step quantisation, z_hat, and the (unclamped) reconstruction."""
        q_enc, q_dec = self.q_scales(q_index)
        y, z_hat, common = self.analysis(x, q_enc)
        yq = self.quantise_y(y, common)
        return yq, z_hat, self.synthesis(yq["y_hat"], q_dec)

    def likelihoods(self, yq: dict, z_hat: torch.Tensor) -> dict:
        """Likelihoods of y (zero-mean Gaussian on the symbols, σ clamped as the release does, no 0.11 floor) and z."""
        sigma = yq["scales"].clamp(1e-5, 1e10)
        # No argument validation: it reads the values (a GPU would wait here for each I-frame); σ is clamped above.
        gaussian = torch.distributions.Normal(torch.zeros_like(sigma), sigma, validate_args=False)
        return {"y": gaussian.cdf(yq["y_q"] + 0.5) - gaussian.cdf(yq["y_q"] - 0.5),
                "z": self.bit_estimator_z.likelihood(z_hat)}

    def forward(self, x: torch.Tensor, q_index) -> dict:
        """Estimation path: ``x_hat`` (not clamped) and likelihoods of y and z, as the release's forward."""
        yq, z_hat, x_hat = self._code(x, q_index)
        return {"x_hat": x_hat, "likelihoods": self.likelihoods(yq, z_hat), "y_q": yq["y_q"], "z_hat": z_hat}

    @torch.no_grad()
    def encode(self, x: torch.Tensor, q_index) -> dict:
        """What the entropy coder needs: ``z_hat`` [B,256,h/4,w/4], per-step ``sym_steps`` and their σ
        ``scale_steps`` (4 × [B,64,h,w]), the encoder's reconstruction ``x_hat`` (clamped), and the
        ``likelihoods`` of the same pass (the estimated rate, without a second forward)."""
        yq, z_hat, x_hat = self._code(x, q_index)
        return {"z_hat": z_hat, "sym_steps": yq["sym_steps"], "scale_steps": yq["scale_steps"],
                "x_hat": x_hat.clamp(0, 1), "likelihoods": self.likelihoods(yq, z_hat)}

    @torch.no_grad()
    def decode(self, z_hat: torch.Tensor, decode_step: Callable[[int, torch.Tensor], torch.Tensor],
               q_index) -> torch.Tensor:
        """Reconstruct (clamped) from decoded ``z_hat`` and a step decoder (see ``dequantise_y``)."""
        _, q_dec = self.q_scales(q_index)
        h, w = z_hat.shape[-2] * 4, z_hat.shape[-1] * 4          # y of a 64-aligned frame: 4·z exactly
        y_hat = self.dequantise_y(self.hyper_params(z_hat, (h, w)), decode_step)
        return self.synthesis(y_hat, q_dec).clamp(0, 1)


class IntraCoder(nn.Module):
    """``if_model``: pads frames to a multiple of 64 around ``IntraNet`` and crops the result back."""

    def __init__(self):
        super().__init__()
        self.net = IntraNet()

    def interpolate(self) -> None:
        self.net.interpolate()

    @staticmethod
    def _check(x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != 3:
            raise IntraInputError(f"intra coder expects a [B, 3, H, W] frame, got shape {tuple(x.shape)}")

    def forward(self, x: torch.Tensor, q_index):
        """(x_hat cropped to x's size, not clamped; (likelihood_y, likelihood_z)) at the 64-padded size."""
        self._check(x)
        out = self.net(pad_to_multiple(x, PAD)[0], q_index)
        h, w = x.shape[-2:]
        return out["x_hat"][..., :h, :w], (out["likelihoods"]["y"], out["likelihoods"]["z"])

    def encode(self, x: torch.Tensor, q_index) -> dict:
        """``IntraNet.encode`` on the padded frame, with ``x_hat`` cropped back to x's size."""
        self._check(x)
        out = self.net.encode(pad_to_multiple(x, PAD)[0], q_index)
        out["x_hat"] = out["x_hat"][..., :x.shape[-2], :x.shape[-1]]
        return out

    def decode(self, z_hat: torch.Tensor, decode_step, q_index, height: int, width: int) -> torch.Tensor:
        """Decode a frame of ``height`` x ``width`` (z_hat is at the 64-padded size) and crop to it."""
        if z_hat.shape[-2:] != ((height + PAD - 1) // PAD, (width + PAD - 1) // PAD):
            raise IntraInputError(f"z_hat of shape {tuple(z_hat.shape)} does not fit a {height}x{width} frame")
        return self.net.decode(z_hat, decode_step, q_index)[..., :height, :width]
