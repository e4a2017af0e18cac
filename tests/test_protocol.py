"""Crop, padding and GOP plan against the official test protocol (HyTIP.py test_step) and torchvision's CenterCrop."""
import pytest
import torch

from bench.data.protocol import (
    CropBox,
    PlanError,
    centre_crop,
    centre_crop_box,
    pad_to_multiple,
    plan_frames,
    unpad,
)
from bench.errors import InputError


@pytest.mark.parametrize("size, box", [
    ((1080, 1920), CropBox(28, 0, 1024, 1920)),
    ((480, 832), CropBox(16, 0, 448, 832)),
    ((240, 416), CropBox(24, 16, 192, 384)),
    ((720, 1280), CropBox(8, 0, 704, 1280)),
])
def test_crop_of_the_published_resolutions(size, box):
    assert centre_crop_box(*size) == box


def test_crop_matches_torchvision_center_crop_including_half_pixel_offsets():
    tvf = pytest.importorskip("torchvision.transforms.functional")
    # Differences of 2k+1 pixels put the window half a pixel off centre; torchvision rounds half to even.
    for height in range(64, 64 * 3 + 1, 7):
        for width in (64, 101, 150, 191, 203):
            x = torch.arange(height * width, dtype=torch.int32).reshape(1, height, width)
            box = centre_crop_box(height, width)
            expected = tvf.center_crop(x, [box.height, box.width])
            assert torch.equal(centre_crop(x), expected), (height, width)


def test_crop_of_1080p_drops_28_rows_top_and_bottom():
    x = torch.arange(1080).view(1, 1080, 1).expand(1, 1080, 1920)
    cropped = centre_crop(x)
    assert cropped.shape[-2:] == (1024, 1920)
    assert cropped[0, 0, 0] == 28 and cropped[0, -1, 0] == 1080 - 28 - 1


def test_crop_rejects_frames_smaller_than_the_unit():
    with pytest.raises(InputError, match="smaller than the 64x64"):
        centre_crop_box(48, 1920)


def test_padding_replicates_the_last_row_and_column_and_unpads_exactly():
    x = torch.rand(1, 3, 1080, 1912)
    padded, pads = pad_to_multiple(x)
    assert pads == (8, 8) and padded.shape[-2:] == (1088, 1920)
    assert torch.equal(padded[..., 1080:, :1912], x[..., -1:, :].expand(1, 3, 8, 1912))
    assert torch.equal(padded[..., :1080, 1912:], x[..., :, -1:].expand(1, 3, 1080, 8))
    assert torch.equal(unpad(padded, pads), x)


def test_padding_is_a_no_op_after_the_crop():
    x = torch.rand(1, 3, 1024, 1920)
    padded, pads = pad_to_multiple(x)
    assert pads == (0, 0) and padded is x


def _summary(plan):
    return {p.number: (p.type, p.frame_idx, p.predict, p.gop) for p in plan}


def test_standard_plan_is_three_independent_gops_of_32():
    plan = plan_frames(96)
    assert len(plan) == 96
    assert [p.number for p in plan if p.type == "I"] == [1, 33, 65]
    assert [p.number for p in plan if p.type == "P" and not p.predict] == [2, 34, 66]
    assert [p.frame_idx for p in plan[:33]] == list(range(32)) + [0]
    assert [p.gop for p in plan][::32] == [0, 1, 2]
    # reset_interval 32 touches only frame_idx 1, which already follows an I-frame.
    assert [p.number for p in plan if p.reset_ref_feature] == [2, 34, 66]


def test_kimono_scene_cut_at_141_in_a_240_frame_run():
    plan = plan_frames(240, 32, [141])  # Kimono1 (SPEC §0)
    assert len(plan) == 224  # official: seq_len // gop GOPs; the 16-frame tail is not coded
    s = _summary(plan)
    assert s[141] == ("I", 12, False, 4)  # GOP 4 holds frames 129..160; frame_idx keeps counting
    assert plan[140].scene_cut
    assert s[142] == ("P", 13, False, 4)
    assert s[143] == ("P", 14, True, 4)
    assert [p.number for p in plan if p.type == "I"] == [1, 33, 65, 97, 129, 141, 161, 193]


def test_keep_partial_codes_the_tail_as_a_short_gop():
    plan = plan_frames(240, 32, [141], keep_partial=True)
    assert len(plan) == 240
    tail = [p for p in plan if p.gop == 7]
    assert [p.number for p in tail] == list(range(225, 241))
    assert tail[0].type == "I" and not tail[1].predict and tail[2].predict


def test_mcl_jcv_cuts_inside_the_96_frame_test_window():
    plan = plan_frames(96, 32, [43, 81, 106])  # videoSRC20 (SPEC §0)
    assert [p.number for p in plan if p.type == "I"] == [1, 33, 43, 65, 81]
    assert [p.number for p in plan if p.type == "P" and not p.predict] == [2, 34, 44, 66, 82]


def test_cut_on_a_gop_start_and_consecutive_cuts():
    plan = plan_frames(96, 32, [33, 50, 51])
    s = _summary(plan)
    assert s[33] == ("I", 0, False, 1) and not plan[32].scene_cut
    assert s[50][0] == s[51][0] == "I"
    assert s[52] == ("P", 19, False, 1) and s[53][2]


def test_single_gop_resets_ref_feature_every_32_frames():
    plan = plan_frames(96, None)
    assert [p.number for p in plan if p.type == "I"] == [1]
    assert [p.number for p in plan if p.reset_ref_feature] == [2, 34, 66]
    assert all(p.predict for p in plan[2:])


@pytest.mark.parametrize("args, message", [
    ((0,), "at least 1 frame"),
    ((96, 0), "intra period"),
    ((96, 32, [0]), "1-based"),
    ((20, 32), "no whole GOP"),
])
def test_plan_rejects_bad_arguments(args, message):
    with pytest.raises(PlanError, match=message):
        plan_frames(*args)
