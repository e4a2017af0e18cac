"""hytip.gop: the official test loop's frame plan (HyTIP.py test_step) and the pad-to-16 / crop-back geometry.

Expected plans are written out by hand from the loop's rules: I-frame at frame_idx 0 or a listed scene cut
(buffers reset), predict = frame_idx != 1 and the previous frame is not a cut, ref_feature reset at
frame_idx % 32 == 1, whole GOPs only (seq_len // gop) unless keep_partial.
"""
import itertools

import pytest
import torch

from hytip.gop import PlanError, iter_plan, pad_to_multiple, padding, plan_frames, unpad


def _summary(plan):
    return {p.number: (p.type, p.frame_idx, p.predict, p.gop) for p in plan}


def test_padding_replicates_edges_and_unpad_restores_the_frame():
    x = torch.rand(1, 3, 72, 100)
    padded, pads = pad_to_multiple(x)
    assert pads == (12, 8) and padded.shape[-2:] == (80, 112)
    assert torch.equal(padded[..., 72:, :100], x[..., -1:, :].expand(1, 3, 8, 100))
    assert torch.equal(padded[..., :72, 100:], x[..., :, -1:].expand(1, 3, 72, 12))
    assert torch.equal(padded[..., 72:, 100:], x[..., -1:, -1:].expand(1, 3, 8, 12))
    assert torch.equal(unpad(padded, pads), x)


@pytest.mark.parametrize("size, pads", [((1080, 1920), (0, 8)), ((1024, 1920), (0, 0)), ((72, 100), (12, 8)),
                                        ((1, 1), (15, 15)), ((240, 416), (0, 0))])
def test_padding_amounts(size, pads):
    assert padding(*size) == pads


def test_padding_is_a_no_op_on_aligned_frames():
    x = torch.rand(1, 3, 128, 192)
    padded, pads = pad_to_multiple(x)
    assert pads == (0, 0) and padded is x


def test_three_gops_of_32():
    plan = plan_frames(96)
    assert [p.number for p in plan if p.type == "I"] == [1, 33, 65]
    assert [p.number for p in plan if p.type == "P" and not p.predict] == [2, 34, 66]
    assert [p.frame_idx for p in plan[:34]] == list(range(32)) + [0, 1]
    assert [p.number for p in plan if p.reset_ref_feature] == [2, 34, 66]


def test_scene_cut_keeps_frame_idx_counting_and_drops_predict_after_it():
    plan = plan_frames(240, 32, [141])
    assert len(plan) == 224                      # 7 whole GOPs; the 16-frame tail is not coded
    s = _summary(plan)
    assert s[141] == ("I", 12, False, 4) and plan[140].scene_cut
    assert s[142] == ("P", 13, False, 4)
    assert s[143] == ("P", 14, True, 4)
    assert not plan[141].reset_ref_feature       # 13 % 32 != 1: the I-frame reset the buffers already


def test_keep_partial_and_single_gop():
    assert len(plan_frames(40, 32, keep_partial=True)) == 40
    plan = plan_frames(70, None)
    assert [p.number for p in plan if p.type == "I"] == [1]
    assert [p.number for p in plan if p.reset_ref_feature] == [2, 34, 66]
    assert all(p.predict for p in plan[2:])


def test_cut_on_a_gop_start_and_consecutive_cuts():
    s = _summary(plan_frames(64, 32, [33, 40, 41]))
    assert s[33] == ("I", 0, False, 1)
    assert s[40][0] == s[41][0] == "I"
    assert s[42] == ("P", 9, False, 1) and s[43] == ("P", 10, True, 1)


@pytest.mark.parametrize("period, cuts", [(32, ()), (3, (5,)), (None, (2, 7))])
def test_streaming_plan_is_the_plan_of_any_length(period, cuts):
    streamed = list(itertools.islice(iter_plan(period, cuts), 40))
    assert streamed == plan_frames(40, period, cuts, keep_partial=True)


@pytest.mark.parametrize("args, kwargs, message", [
    ((0,), {}, "at least 1 frame"),
    ((96, 0), {}, "intra period"),
    ((96, 2.5), {}, "intra period"),
    ((96, 32, [0]), {}, "1-based"),
    ((20, 32), {}, "no whole GOP"),
    ((20, 32), {"reset_interval": -1}, "reset interval"),
])
def test_plan_rejects_bad_arguments(args, kwargs, message):
    with pytest.raises(PlanError, match=message):
        plan_frames(*args, **kwargs)
