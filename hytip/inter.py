"""Masked conditional residual inter coder of HyTIP (``Residual.net``, SPEC §3.3).

Holds the P-frame-only blocks: the channel transform module (CTM_CAB), the mask generator and the
four-step checkerboard context model. As in ``hytip.motion``, the coder is split into temporal context,
analysis, prior, checkerboard and synthesis so that estimation and entropy coding share the arithmetic.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from hytip.entropy_models import BitEstimator, GaussianConditional
from hytip.layers import DCB4, DCBC, DCBI, RBI, RBU, ResBlk, UNet2, conv, lrelu, of_cat, subpel3, warp
from hytip.gop import pad_to_multiple
from hytip.motion import NUM_QP, LatentPrior, PFrameInputError, q_rows, split_prior

G1, G2, G4, G8, G16, GZ = 48, 64, 96, 96, 128, 64   # g_ch_1x .. g_ch_16x, g_ch_z of config/Inter.yml
FEATURE_CH = 2                                       # channels of the buffered ref_feature
# Frame-type adaptation: which feature adaptor serves frame_idx, by frame_idx % 8.
INDEX_MAP = (0, 1, 0, 2, 0, 2, 0, 2)
# Checkerboard coding order of the (row, col) parities of the latent grid.
STEP_PARITY = ((0, 0), (1, 1), (1, 0), (0, 1))


def frame_type_index(frame_idx: int) -> int:
    """Adaptor index (``fa_idx``) of a P-frame: INDEX_MAP[frame_idx % 8]."""
    return INDEX_MAP[int(frame_idx) % len(INDEX_MAP)]


# ---------------------------------------------------------------------------------------------------
# Channel transform module (CTM_CAB): two transposed-attention blocks over channels, plus identity.
# The reshapes follow the release's einops patterns op for op, so that tensor layouts (and with them
# the oneDNN kernels and their rounding) are the same.

class _LayerNormBody(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x):
        mu = x.mean(-1, keepdim=True)
        var = x.var(-1, keepdim=True, unbiased=False)
        return (x - mu) / torch.sqrt(var + 1e-5) * self.weight + self.bias


class _ChannelLayerNorm(nn.Module):
    """LayerNorm over channels at every pixel (with bias, eps 1e-5, biased variance)."""

    def __init__(self, dim: int):
        super().__init__()
        self.body = _LayerNormBody(dim)

    def forward(self, x):
        b, c, h, w = x.shape
        y = self.body(x.permute(0, 2, 3, 1).reshape(b, h * w, c))
        return y.reshape(b, h, w, c).permute(0, 3, 1, 2)


class _ChannelAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.qkv = nn.Conv2d(dim, dim * 3, 1, bias=False)
        self.qkv_dwconv = nn.Conv2d(dim * 3, dim * 3, 3, padding=1, groups=dim * 3, bias=False)
        self.project_out = nn.Conv2d(dim, dim, 1, bias=False)

    def forward(self, x):
        b, c, h, w = x.shape
        q, k, v = (t.reshape(b, self.heads, c // self.heads, h * w)
                   for t in self.qkv_dwconv(self.qkv(x)).chunk(3, dim=1))
        q = F.normalize(q, dim=-1)
        k = F.normalize(k, dim=-1)
        attn = ((q @ k.transpose(-2, -1)) * self.temperature).softmax(dim=-1)
        return self.project_out((attn @ v).reshape(b, c, h, w))


class _FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.project_in = nn.Conv2d(dim, hidden, 1, bias=False)
        self.act = nn.GELU()
        self.project_out = nn.Conv2d(hidden, dim, 1, bias=False)

    def forward(self, x):
        return self.project_out(self.act(self.project_in(x)))


class _CTMBlock(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.norm1 = _ChannelLayerNorm(dim)
        self.attn = _ChannelAttention(dim, heads)
        self.norm2 = _ChannelLayerNorm(dim)
        self.mlp = _FeedForward(dim, dim * 4)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class _CTMLayer(nn.Module):
    def __init__(self, dim: int, depth: int, heads: int):
        super().__init__()
        self.blocks = nn.ModuleList(_CTMBlock(dim, heads) for _ in range(depth))

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return x


class CTM_CAB(nn.Module):
    """Channel transform module: x + Blocks(x) (SPEC §1); bias-free convs, 8 heads, depth 2."""

    def __init__(self, dim: int = G16, depth: int = 2, heads: int = 8):
        super().__init__()
        self.restor_layer = _CTMLayer(dim, depth, heads)

    def forward(self, x):
        return self.restor_layer(x) + x


# ---------------------------------------------------------------------------------------------------
class _MaskUNet(nn.Module):
    """Small U-Net giving the prediction mask from concat(flow_hat, mc_frame); sizes multiple of 4."""

    def __init__(self, in_ch: int = 5, out_ch: int = 1):
        super().__init__()
        self.down_1 = nn.Sequential(conv(in_ch, 16, 3, 1), lrelu(), conv(16, 32, 3, 2), lrelu(0.1))
        self.down_2 = nn.Sequential(conv(32, 32, 3, 1), lrelu(), conv(32, 64, 3, 2), lrelu(0.1))
        self.conv = nn.Sequential(conv(64, 64, 3, 1), lrelu(), conv(64, 64, 3, 1), lrelu(0.1))
        self.up_2 = nn.Sequential(
            nn.ConvTranspose2d(128, 64, 3, stride=2, padding=1, output_padding=1), lrelu(),
            conv(64, 32, 3, 1), lrelu(0.1))
        self.up_1 = nn.Sequential(
            nn.ConvTranspose2d(64, 32, 3, stride=2, padding=1, output_padding=1), lrelu(),
            conv(32, 16, 3, 1), lrelu(0.1), conv(16, out_ch, 3, 1))

    def forward(self, x):
        d1 = self.down_1(x)
        d2 = self.down_2(d1)
        u2 = self.up_2(torch.cat((self.conv(d2), d2), dim=1))
        return torch.sigmoid(self.up_1(torch.cat((u2, d1), dim=1)))


class MaskGenerator(nn.Module):
    """Replicate-pads to a multiple of 4, runs the mask U-Net and crops back."""

    def __init__(self):
        super().__init__()
        self.net = _MaskUNet()

    def forward(self, x):
        h, w = x.shape[-2:]
        return self.net(pad_to_multiple(x, 4)[0])[..., :h, :w]


# ---------------------------------------------------------------------------------------------------
def step_mask(step: int, like: torch.Tensor) -> torch.Tensor:
    """[1,1,h,w] 0/1 mask of the positions coded at checkerboard ``step`` (same for every channel)."""
    r, c = STEP_PARITY[step]
    mask = torch.zeros((1, 1) + tuple(like.shape[-2:]), dtype=like.dtype, device=like.device)
    mask[..., r::2, c::2] = 1
    return mask


@dataclass
class CheckerboardStep:
    """What the entropy coder needs for one step: masked σ (CDF indexes come from them; 0 outside the
    step, i.e. index 0), masked μ, and the residual symbols round(y − μ) (0 outside the step)."""
    scales: torch.Tensor
    means: torch.Tensor
    symbols: torch.Tensor


# ``code_step(step, scales, means, mask) -> symbols``: the encoder quantises y, the decoder reads a string.
CodeStep = Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


class Checkerboard(nn.Module):
    """Four-step spatial context model: step 0 uses the hyper prior; step k > 0 refines (σ, μ) from the
    latent decoded so far and the *hyper* (σ, μ) through one shared DCBC."""

    def __init__(self):
        super().__init__()
        self.y_spatial_prior = DCBC(G16 * 3, G16 * 2)
        self.gaussian_conditional = GaussianConditional()

    def run(self, scales: torch.Tensor, means: torch.Tensor, code_step: CodeStep):
        """(ŷ, merged σ, merged μ, [CheckerboardStep] × 4) for hyper parameters (σ, μ)."""
        steps: List[CheckerboardStep] = []
        y_hat = scales_all = means_all = None
        step_scales, step_means = scales, means
        for step in range(len(STEP_PARITY)):
            if step > 0:
                step_scales, step_means = self.y_spatial_prior(
                    torch.cat((y_hat, scales, means), dim=1)).chunk(2, 1)
            mask = step_mask(step, scales)
            s, m = step_scales * mask, step_means * mask
            symbols = code_step(step, s, m, mask)
            part = symbols + m
            steps.append(CheckerboardStep(s, m, symbols))
            if step == 0:
                y_hat, scales_all, means_all = part, s, m
            else:
                y_hat, scales_all, means_all = y_hat + part, scales_all + s, means_all + m
        return y_hat, scales_all, means_all, steps

    def forward(self, y: torch.Tensor, scales: torch.Tensor, means: torch.Tensor):
        """Estimation: (ŷ, likelihood of y under the merged Gaussian, steps)."""
        y_hat, scales_all, means_all, steps = self.run(
            scales, means, lambda step, s, m, mask: torch.round((y - m) * mask))
        _, likelihood = self.gaussian_conditional(y, scales_all, means_all)
        return y_hat, likelihood, steps


# ---------------------------------------------------------------------------------------------------
class _FeatureExtractor(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = conv(G1, G1, 3, 1)
        self.res_block1 = ResBlk(G1)
        self.conv2 = conv(G1, G2, 3, 2)
        self.res_block2 = ResBlk(G2)
        self.conv3 = conv(G2, G4, 3, 2)
        self.res_block3 = ResBlk(G4)

    def forward(self, feature):
        l1 = self.res_block1(self.conv1(feature))
        l2 = self.res_block2(self.conv2(l1))
        return l1, l2, self.res_block3(self.conv3(l2))


class _ContextFusion(nn.Module):
    row_tiles = False      # conv1_out's concatenation in row tiles (the fast kernels, hytip.fast)

    def __init__(self):
        super().__init__()
        self.conv3_up = subpel3(G4, G2, 2)
        self.res_block3_up = ResBlk(G2)
        self.conv3_out = conv(G4, G4, 3, 1)
        self.res_block3_out = ResBlk(G4)
        self.conv2_up = subpel3(G2 * 2, G1, 2)
        self.res_block2_up = ResBlk(G1)
        self.conv2_out = conv(G2 * 2, G2, 3, 1)
        self.res_block2_out = ResBlk(G2)
        self.conv1_out = conv(G1 * 2, G1, 3, 1)
        self.res_block1_out = ResBlk(G1)

    def forward(self, c1, c2, c3):
        # Each intermediate is dropped as soon as it has been read: at 1080p the full-resolution ones are 380-760 MB.
        c32 = [self.res_block3_up(self.conv3_up(c3)), c2]       # concatenated by each reader (fast kernels: per tile)
        c3_out = self.res_block3_out(self.conv3_out(c3))
        c2_out = self.res_block2_out(of_cat(self.conv2_out, list(c32), self.row_tiles))
        c21 = [self.res_block2_up(of_cat(self.conv2_up, c32, self.row_tiles)), c1]
        c1_out = self.res_block1_out(of_cat(self.conv1_out, c21, self.row_tiles, into_input=True))
        # Into the warped levels, which nothing reads after (1080p: 0.5 GB less than new sums); float32 as they are,
        # also where c*_out is bfloat16 (the bf16 kernels).
        return c1.add_(c1_out), c2.add_(c2_out), c3.add_(c3_out)


class _ContextualEncoder(nn.Module):
    row_tiles = False      # the concatenations with the contexts in row tiles (the fast kernels, hytip.fast)

    def __init__(self):
        super().__init__()
        self.conv1 = conv(G1 + 3, G2, 3, 2)
        self.res1 = DCB4(G2 * 2, G2 * 2)
        self.conv2 = conv(G2 * 2, G4, 3, 2)
        self.res2 = DCB4(G4 * 2, G4 * 2)
        self.conv3 = conv(G4 * 2, G8, 3, 2)
        self.conv4 = conv(G8, G16, 3, 2)
        self.CTM = CTM_CAB(G16)

    def forward(self, res, ctx, q_enc):
        # Each intermediate goes once read (1080p: the half-resolution ones are 120-240 MB).
        parts = [self.conv1(torch.cat((res, ctx[0]), dim=1)), ctx[1]]
        parts = [self.conv2(of_cat(self.res1, parts, self.row_tiles) * q_enc), ctx[2]]
        return self.CTM(self.conv4(self.conv3(of_cat(self.res2, parts, self.row_tiles))))


class _ContextualDecoder(nn.Module):
    row_tiles = False      # the concatenations with the contexts in row tiles (the fast kernels, hytip.fast)

    def __init__(self):
        super().__init__()
        self.CTM = CTM_CAB(G16)
        self.up1 = subpel3(G16, G8, 2)
        self.up2 = subpel3(G8, G4, 2)
        self.res1 = DCB4(G4 * 2, G4 * 2)
        self.up3 = subpel3(G4 * 2, G2, 2)
        self.res2 = DCB4(G2 * 2, G2 * 2)
        self.up4 = subpel3(G2 * 2, 32, 2)

    def forward(self, y_hat, ctx, q_dec):
        # Each intermediate goes once read (1080p: the half-resolution ones are 120-240 MB).
        parts = [self.up2(self.up1(self.CTM(y_hat))), ctx[2]]
        parts = [self.up3(of_cat(self.res1, parts, self.row_tiles)) * q_dec, ctx[1]]
        return of_cat(self.up4, [of_cat(self.res2, parts, self.row_tiles)], self.row_tiles)


class _ReconGeneration(nn.Module):
    row_tiles = False      # first_conv's concatenation in row tiles (the fast kernels, hytip.fast)

    def __init__(self):
        super().__init__()
        self.first_conv = conv(32 + G1, G1, 3, 1)
        self.unet_1 = UNet2(G1, G1)
        self.unet_2 = UNet2(G1, G1)
        self.recon_conv = conv(G1, 3, 3, 1)

    def forward(self, inputs: list, q_recon):
        """(feature 48@1, residual r̂ before clamping) from ``inputs`` [decoded 32@1, ctx1 48@1], which it empties
        once read: the U-Nets do not need them (1080p: 0.6 GB)."""
        feature = self.unet_2([self.unet_1([of_cat(self.first_conv, inputs, self.row_tiles)])])
        return feature, self.recon_conv(feature * q_recon)


class _FrameFeatureGenerator(nn.Module):
    def __init__(self):
        super().__init__()
        self.recon_conv = conv(G1, FEATURE_CH, 3, 1)

    def forward(self, feature):
        return self.recon_conv(feature)


@dataclass
class TemporalContext:
    """Multi-scale motion-compensated contexts (48@1, 64@1/2, 96@1/4), the mc frame and the mask."""
    ctx: Optional[Tuple[torch.Tensor, torch.Tensor, torch.Tensor]]    # None once synthesis has read them
    mc_frame: torch.Tensor
    mask: torch.Tensor

    @property
    def prediction(self) -> torch.Tensor:
        return self.mask * self.mc_frame


@dataclass
class InterOutput:
    recon: torch.Tensor                      # x̂ before the caller's final clamp
    likelihoods: Tuple[torch.Tensor, ...]    # (y, z)
    ref_feature: torch.Tensor                # new implicit buffer 2@1
    ref_y: torch.Tensor                      # new latent buffer ŷ·q_step 128@1/16
    temporal_context: TemporalContext
    y_steps: List[CheckerboardStep]          # what the entropy coder codes, per checkerboard step
    z_hat: torch.Tensor                      # integer hyper-latent 64@1/64


class Inter(nn.Module):
    """Masked conditional residual coder. Children are registered in the release's order."""

    def __init__(self):
        super().__init__()
        self.q_encoder = nn.Parameter(torch.ones(NUM_QP, G2 * 2, 1, 1))
        self.q_decoder = nn.Parameter(torch.ones(NUM_QP, G2, 1, 1))
        # In the release this table multiplies a value that is never read again: no effect on coding.
        self.q_feature = nn.Parameter(torch.ones(NUM_QP, G1, 1, 1))
        self.q_recon = nn.Parameter(torch.ones(NUM_QP, G1, 1, 1))
        self.bit_estimator_z = BitEstimator(GZ)
        self.mc_generator = RBI(G1, 3)
        self.MaskGenerator = MaskGenerator()
        self.feature_adaptor_I = conv(3, G1, 3, 1)
        self.feature_adaptor = nn.ModuleList(conv(FEATURE_CH + 3, G1, 1) for _ in range(3))
        self.feature_extractor = _FeatureExtractor()
        self.context_fusion_net = _ContextFusion()
        self.contextual_encoder = _ContextualEncoder()
        self.contextual_hyper_prior_encoder = nn.Sequential(
            DCB4(G16, GZ), conv(GZ, GZ, 3, 2), lrelu(), conv(GZ, GZ, 3, 2))
        self.contextual_hyper_prior_decoder = nn.Sequential(RBU(GZ, GZ), RBU(GZ, GZ), DCB4(GZ, G16))
        self.temporal_prior_encoder = nn.Sequential(conv(G4, G8, 3, 2), lrelu(0.1), conv(G8, G16, 3, 2))
        self.y_prior_fusion_adaptor_0 = DCBI(G16 * 2, G16 * 3)
        self.y_prior_fusion_adaptor_1 = DCBI(G16 * 3, G16 * 3)
        self.y_prior_fusion = nn.Sequential(DCBI(G16 * 3, G16 * 3), DCBI(G16 * 3, G16 * 3))
        self.context_model = Checkerboard()
        self.contextual_decoder = _ContextualDecoder()
        self.recon_generation_net = _ReconGeneration()
        self.frame_feature_generator = _FrameFeatureGenerator()

    # -- shared by both sides -------------------------------------------------------------------
    def temporal_context(self, ref_frame, ref_feature: Optional[torch.Tensor], flow_hat,
                         fa_idx: int) -> TemporalContext:
        """Adapt the reference (frame-type adaptor ``fa_idx``, or ``feature_adaptor_I`` without a
        buffered feature), extract and warp 3 scales, fuse them, and build the mc frame and the mask."""
        if ref_feature is None:
            feature = self.feature_adaptor_I(ref_frame)
        else:
            if fa_idx not in range(len(self.feature_adaptor)):
                raise PFrameInputError(f"frame-type adaptor index: expected 0..2, found {fa_idx}")
            feature = self.feature_adaptor[fa_idx](torch.cat((ref_feature, ref_frame), dim=1))
        levels = list(self.feature_extractor(feature))
        del feature
        h, w = flow_hat.shape[-2:]
        mv2 = F.interpolate(flow_hat, size=(h // 2, w // 2), mode="bilinear", align_corners=False) / 2
        mv3 = F.interpolate(mv2, size=(h // 4, w // 4), mode="bilinear", align_corners=False) / 2
        for k, mv in enumerate((flow_hat, mv2, mv3)):
            levels[k] = warp(levels[k], mv)       # each level freed once warped (1080p: 380 MB at full size)
        ctx = self.context_fusion_net(*levels)
        del levels
        mc_frame = self.mc_generator(ctx[0])
        mask = self.MaskGenerator(torch.cat((flow_hat, mc_frame), dim=1))
        return TemporalContext(ctx, mc_frame, mask)

    def prior(self, z_hat, y_hw: Tuple[int, int], ctx3, ref_y: Optional[torch.Tensor]) -> LatentPrior:
        """Hyper prior fused with the temporal prior of ctx3 and, when buffered, the previous latent."""
        hyper = self.contextual_hyper_prior_decoder(z_hat)[..., :y_hw[0], :y_hw[1]]
        temporal = self.temporal_prior_encoder(ctx3)
        if ref_y is None:
            params = self.y_prior_fusion_adaptor_0(torch.cat((temporal, hyper), dim=1))
        else:
            params = self.y_prior_fusion_adaptor_1(torch.cat((temporal, hyper, ref_y), dim=1))
        return LatentPrior(*split_prior(self.y_prior_fusion(params)))

    def synthesis(self, y_hat, tc: TemporalContext, qp: int):
        """(reconstruction before the final clamp, new ref_feature 2@1) from ŷ (already ·q_step). The contexts'
        last reader: it releases them (``tc.ctx`` None afterwards; 1080p: 0.55 GB) before the reconstruction net."""
        inputs = [self.contextual_decoder(y_hat, tc.ctx, q_rows(self.q_decoder, qp)), tc.ctx[0]]
        tc.ctx = None
        feature, res_hat = self.recon_generation_net(inputs, q_rows(self.q_recon, qp))
        # The release clamps the decoded residual to [0, 1] before adding the prediction.
        return res_hat.clamp(0, 1) + tc.prediction, self.frame_feature_generator(feature)

    # -- encoder side ---------------------------------------------------------------------------
    def analysis(self, x, tc: TemporalContext, qp: int):
        """(y 128@1/16 before q_step scaling, rounded z 64@1/64) of the residual x − m·mc_frame."""
        y = self.contextual_encoder(x - tc.prediction, tc.ctx, q_rows(self.q_encoder, qp))
        return y, torch.round(self.contextual_hyper_prior_encoder(pad_to_multiple(y, 4)[0]))

    def forward(self, x, flow_hat, ref_frame, qp: int, fa_idx: int, ref_feature=None, ref_y=None) -> InterOutput:
        """Estimation pass: code ``x`` given the decoded flow and the reference frame and buffers."""
        tc = self.temporal_context(ref_frame, ref_feature, flow_hat, fa_idx)
        y, z_hat = self.analysis(x, tc, qp)
        prior = self.prior(z_hat, y.shape[-2:], tc.ctx[2], ref_y)
        # Reciprocal multiply as in the release (not y / q_step).
        y_hat, y_likelihood, steps = self.context_model(y * prior.q_step.reciprocal(), prior.scales, prior.means)
        y_hat = y_hat * prior.q_step
        recon, ref_feature = self.synthesis(y_hat, tc, qp)
        return InterOutput(
            recon=recon,
            likelihoods=(y_likelihood, self.bit_estimator_z.likelihood(z_hat)),
            ref_feature=ref_feature,
            ref_y=y_hat,
            temporal_context=tc,
            y_steps=steps,
            z_hat=z_hat,
        )
