"""Conditional motion coder of HyTIP (``CondMotion.net``, SPEC §3.2).

The coder is split into analysis (encoder side), prior (both sides) and synthesis (decoder side) so that
the estimation forward pass and the entropy-coding compress/decompress paths run the same arithmetic.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

import torch
import torch.nn as nn

from hytip.entropy_models import BitEstimator, GaussianConditional
from hytip.errors import HytipError
from hytip.gop import pad_to_multiple
from hytip.layers import DCB4, DCBI, GDN, RBS, RBU, conv, lrelu, subpel1

CH = 64            # channel_mv = channel_N = g_ch_z
IMPLICIT_CH = 2    # channels of the buffered ref_mv_feature
NUM_QP = 64
Q_STEP_FLOOR = 0.5


class PFrameInputError(HytipError):
    """Inconsistent P-frame inputs (temporal state, QP or shapes)."""


def check_qp(qp):
    """An int, or for a batch with one QP per sample a list of ints (or a 1-D tensor), each in 0..NUM_QP-1; a batch's
    QPs come back as a tuple of ints (host values: a GPU waits for none when they select table rows)."""
    if torch.is_tensor(qp) or isinstance(qp, (list, tuple)):
        values = qp.reshape(-1).tolist() if torch.is_tensor(qp) else list(qp)
        if not values or not all(int(v) == v and 0 <= v < NUM_QP for v in values):
            raise PFrameInputError(f"P-frame QPs: expected integers in 0..{NUM_QP - 1}, found {qp}")
        return tuple(int(v) for v in values)
    if not 0 <= int(qp) < NUM_QP:
        raise PFrameInputError(f"P-frame QP: expected an integer in 0..{NUM_QP - 1}, found {qp}")
    return int(qp)


def q_rows(table: torch.Tensor, qp) -> torch.Tensor:
    """The [B or 1, C, 1, 1] rows of a per-QP scale table for ``check_qp``'s int or per-sample tuple."""
    return table[qp:qp + 1] if isinstance(qp, int) else torch.cat([table[q:q + 1] for q in qp])


def split_prior(params: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(q_step, scales, means) from fused prior parameters; q_step is floored at 0.5."""
    q_step, scales, means = params.chunk(3, 1)
    return torch.clamp_min(q_step, Q_STEP_FLOOR), scales, means


@dataclass
class LatentPrior:
    """Entropy parameters of a latent: its quantisation step and the Gaussian (σ, μ) of the scaled latent."""
    q_step: torch.Tensor
    scales: torch.Tensor
    means: torch.Tensor


@dataclass
class MotionOutput:
    flow_hat: torch.Tensor                  # decoded flow 2@1
    likelihoods: Tuple[torch.Tensor, ...]   # (mv_y, mv_z)
    ref_mv_feature: torch.Tensor            # new implicit buffer 2@1/4
    ref_mv_y: torch.Tensor                  # new latent buffer mv_ŷ·q_step 64@1/16
    mv_y_symbols: torch.Tensor              # round(mv_y·(1/q_step) − μ), what the entropy coder codes
    mv_y_prior: LatentPrior                 # q_step, σ (CDF indexes), μ of mv_y
    mv_z_hat: torch.Tensor                  # integer hyper-latent 64@1/64


class _CondExtractor(nn.Module):
    """Conditions from the previous decoded flow: c4 (64@1/4, fused with ref_mv_feature) and c8 (64@1/8)."""

    def __init__(self):
        super().__init__()
        self.down0 = nn.Sequential(conv(2, CH, 5, 4), lrelu(0.1))
        self.down1 = nn.Sequential(conv(CH, CH, 3, 2), lrelu(0.1))
        self.fusion = nn.Sequential(conv(CH + IMPLICIT_CH, CH, 3, 1), lrelu(0.1))

    def forward(self, ref_flow, ref_mv_feature) -> List[torch.Tensor]:
        c4 = self.fusion(torch.cat((self.down0(ref_flow), ref_mv_feature), dim=1))
        return [c4, self.down1(c4)]


class _MvEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc_1 = nn.Sequential(RBS(2, CH, 2), DCB4(CH, CH))
        self.enc_2 = RBS(CH, CH, 2)
        self.adaptor_0 = DCB4(CH, CH)
        self.adaptor_1 = DCB4(2 * CH, CH)
        # With conditions, enc_3[1] is replaced by adaptor_3_1 on concat(·, c8).
        self.enc_3 = nn.Sequential(RBS(CH, CH, 2), DCB4(CH, CH), conv(CH, CH, 3, 2))
        self.adaptor_3_1 = DCB4(2 * CH, CH)

    def forward(self, flow, conds, q_enc):
        out = self.enc_2(self.enc_1(flow) * q_enc)
        if conds is None:
            return self.enc_3(self.adaptor_0(out))
        out = self.adaptor_1(torch.cat((out, conds[0]), dim=1))
        out = self.adaptor_3_1(torch.cat((self.enc_3[0](out), conds[1]), dim=1))
        return self.enc_3[2](out)


class _MvDecoder(nn.Module):
    def __init__(self):
        super().__init__()
        # With conditions, dec_1[2] and dec_1[4] are replaced by the adaptors on concat(·, c8 / c4).
        self.dec_1 = nn.Sequential(DCB4(CH, CH), RBU(CH, CH), DCB4(CH, CH), RBU(CH, CH), DCB4(CH, CH))
        self.dec_2 = RBU(CH, CH)
        self.dec_3 = nn.Sequential(DCB4(CH, CH), subpel1(CH, 2, 2))
        self.adaptor_0_1 = DCB4(2 * CH, CH)
        self.adaptor_1_1 = DCB4(2 * CH, CH)

    def forward(self, mv_y_hat, conds, q_dec):
        """(flow_hat 2@1, mv_feature 64@1/4)."""
        if conds is None:
            feature = self.dec_1(mv_y_hat)
        else:
            out = self.adaptor_0_1(torch.cat((self.dec_1[:2](mv_y_hat), conds[1]), dim=1))
            feature = self.adaptor_1_1(torch.cat((self.dec_1[3](out), conds[0]), dim=1))
        return self.dec_3(self.dec_2(feature) * q_dec), feature


class Motion(nn.Module):
    """Conditional motion coder with a hybrid (explicit + implicit) temporal buffer.

    Children are registered in the release's order so ``state_dict()`` lists keys as the checkpoint does.
    """

    def __init__(self):
        super().__init__()
        self.mv_q_encoder = nn.Parameter(torch.ones(NUM_QP, CH, 1, 1))
        self.mv_q_decoder = nn.Parameter(torch.ones(NUM_QP, CH, 1, 1))
        self.bit_estimator_z_mv = BitEstimator(CH)
        self.feature_extractor = _CondExtractor()
        self.mv_encoder = _MvEncoder()
        self.mv_hyper_prior_encoder = nn.Sequential(
            DCB4(CH, CH), conv(CH, CH, 3, 2), lrelu(), conv(CH, CH, 3, 2))
        self.mv_hyper_prior_decoder = nn.Sequential(RBU(CH, CH), RBU(CH, CH), DCB4(CH, CH))
        self.temp_prior_fusion_adaptor_0 = DCBI(CH, 2 * CH)
        self.temp_prior_fusion_adaptor_1 = DCBI(3 * CH, 2 * CH)
        self.pred_prior = nn.Sequential(
            conv(5, 128, 3, 2), GDN(128), conv(128, 128, 3, 2), GDN(128),
            conv(128, 128, 3, 2), GDN(128), conv(128, CH, 3, 2))
        self.prior_fusion = nn.Sequential(DCBI(2 * CH, 3 * CH), DCBI(3 * CH, 3 * CH))
        self.gaussian_conditional = GaussianConditional()
        self.mv_decoder = _MvDecoder()
        self.feature_generator = conv(CH, IMPLICIT_CH, 3, 1)

    # -- shared by both sides -------------------------------------------------------------------
    def conditions(self, ref_flow: Optional[torch.Tensor],
                   ref_mv_feature: Optional[torch.Tensor]) -> Optional[List[torch.Tensor]]:
        """[c4, c8] from the buffered flow and motion feature, or None without a temporal prior."""
        if ref_flow is None:
            return None
        if ref_mv_feature is None:
            raise PFrameInputError("motion conditions: ref_flow is given but ref_mv_feature is None")
        return self.feature_extractor(ref_flow, ref_mv_feature)

    def prior(self, mv_z_hat: torch.Tensor, y_hw: Tuple[int, int],
              temporal_input: Optional[torch.Tensor], ref_mv_y: Optional[torch.Tensor]) -> LatentPrior:
        """Hyper prior fused with the temporal prior (concat(ref_frame, ref_flow) and ref_mv_y)."""
        params = self.mv_hyper_prior_decoder(mv_z_hat)[..., :y_hw[0], :y_hw[1]]
        if (temporal_input is None) != (ref_mv_y is None):
            raise PFrameInputError("motion prior: temporal input and ref_mv_y must be both given or both None")
        if temporal_input is None:
            params = self.temp_prior_fusion_adaptor_0(params)
        else:
            temporal = self.pred_prior(temporal_input)
            params = self.temp_prior_fusion_adaptor_1(torch.cat((params, ref_mv_y, temporal), dim=1))
        return LatentPrior(*split_prior(self.prior_fusion(params)))

    def synthesis(self, mv_y_hat: torch.Tensor, conds, qp: int):
        """Decoded flow (2@1) and the new ref_mv_feature (2@1/4) from mv_ŷ (already ·q_step)."""
        flow_hat, feature = self.mv_decoder(mv_y_hat, conds, q_rows(self.mv_q_decoder, qp))
        return flow_hat, self.feature_generator(feature)

    # -- encoder side ---------------------------------------------------------------------------
    def analysis(self, flow: torch.Tensor, conds, qp: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """(mv_y 64@1/16 before q_step scaling, rounded mv_z 64@1/64)."""
        mv_y = self.mv_encoder(flow, conds, q_rows(self.mv_q_encoder, qp))
        return mv_y, torch.round(self.mv_hyper_prior_encoder(pad_to_multiple(mv_y, 4)[0]))

    def forward(self, flow, qp: int, ref_flow=None, ref_mv_feature=None, temporal_input=None,
                ref_mv_y=None) -> MotionOutput:
        """Estimation pass: code ``flow``; without ``ref_flow`` (first P-frame) there are no conditions,
        and without ``temporal_input`` / ``ref_mv_y`` no temporal prior."""
        conds = self.conditions(ref_flow, ref_mv_feature)
        mv_y, mv_z_hat = self.analysis(flow, conds, qp)
        prior = self.prior(mv_z_hat, mv_y.shape[-2:], temporal_input, ref_mv_y)
        # The release scales by the reciprocal (y · (1/q)), which differs from y / q in the last bit.
        mv_y = mv_y * prior.q_step.reciprocal()
        mv_y_hat, mv_y_likelihood = self.gaussian_conditional(mv_y, prior.scales, prior.means)
        mv_y_hat = mv_y_hat * prior.q_step
        flow_hat, ref_mv_feature = self.synthesis(mv_y_hat, conds, qp)
        return MotionOutput(
            flow_hat=flow_hat,
            likelihoods=(mv_y_likelihood, self.bit_estimator_z_mv.likelihood(mv_z_hat)),
            ref_mv_feature=ref_mv_feature,
            ref_mv_y=mv_y_hat,
            mv_y_symbols=torch.round(mv_y - prior.means),
            mv_y_prior=prior,
            mv_z_hat=mv_z_hat,
        )
