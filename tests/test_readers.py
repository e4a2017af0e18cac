"""Frame readers: every source kind against ffmpeg's own decoding of the same data, plus the error messages.

Test inputs are cut from the bundled Big Buck Bunny clip with ffmpeg at test time (a few 64x48 frames).
"""
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bench.data.clips import bundled_clip_path
from bench.data.readers import ffmpeg_exe, open_source
from bench.errors import InputError

W, H, N = 64, 48, 6
CROP = f"crop={W}:{H}:600:300"


def ffmpeg(*args):
    subprocess.run([ffmpeg_exe(), "-v", "error", "-nostdin", "-y", *map(str, args)], check=True)


def ffmpeg_bytes(*args) -> bytes:
    return subprocess.run([ffmpeg_exe(), "-v", "error", "-nostdin", *map(str, args)], check=True,
                          capture_output=True).stdout


@pytest.fixture(scope="module")
def clip():
    return bundled_clip_path()


@pytest.fixture(scope="module")
def data(tmp_path_factory, clip):
    """The same N cropped frames as raw 8/10-bit YUV, Y4M, an H.264 file and PNG folders in both layouts."""
    d = tmp_path_factory.mktemp("readers")
    src = ["-i", clip, "-frames:v", N, "-vf", CROP]
    ffmpeg(*src, "-f", "rawvideo", "-pix_fmt", "yuv420p", d / "a.yuv")
    ffmpeg(*src, "-f", "rawvideo", "-pix_fmt", "yuv420p10le", d / "a10.yuv")
    ffmpeg(*src, "-pix_fmt", "yuv420p", d / "a.y4m")
    ffmpeg(*src, "-pix_fmt", "yuv420p10le", "-strict", "-1", d / "a10.y4m")
    (d / "official").mkdir()
    (d / "dcvc").mkdir()
    raw = ["-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{W}x{H}", "-i", d / "a.yuv"]
    ffmpeg(*raw, d / "official" / "frame_%d.png")
    ffmpeg(*raw, d / "dcvc" / "im%05d.png")
    return d


def planes_from_ffmpeg(path: Path, pix_fmt: str, bit_depth: int):
    """ffmpeg's decoding of a file to raw 4:2:0 planes, split independently of the reader."""
    dtype = np.uint8 if bit_depth == 8 else np.dtype("<u2")
    flat = np.frombuffer(ffmpeg_bytes("-i", path, "-f", "rawvideo", "-pix_fmt", pix_fmt, "-"), dtype=dtype)
    frames = flat.reshape(-1, W * H * 3 // 2)
    return [(f[:W * H].reshape(H, W), f[W * H:W * H * 5 // 4].reshape(H // 2, W // 2),
             f[W * H * 5 // 4:].reshape(H // 2, W // 2)) for f in frames]


@pytest.mark.parametrize("name, kwargs, pix_fmt, bits", [
    ("a.yuv", dict(width=W, height=H, pix_fmt="yuv420p"), "yuv420p", 8),
    ("a10.yuv", dict(width=W, height=H, pix_fmt="yuv420p10le"), "yuv420p10le", 10),
    ("a.y4m", {}, "yuv420p", 8),
    ("a10.y4m", {}, "yuv420p10le", 10),
])
def test_yuv_sources_match_ffmpeg_decoding(data, name, kwargs, pix_fmt, bits):
    source = open_source(data / name, **kwargs)
    assert (source.width, source.height, source.pix_fmt, source.bit_depth, len(source)) == (W, H, pix_fmt, bits, N)
    expected = planes_from_ffmpeg(data / "a.y4m", pix_fmt, bits)
    for i in (0, 3, 5, 1):
        got = source.read(i)
        assert got[0].dtype == (np.uint8 if bits == 8 else np.uint16)
        for plane, ref in zip(got, expected[i]):
            np.testing.assert_array_equal(plane, ref)
    streamed = list(source.frames(2, 3))
    assert len(streamed) == 3 and all(np.array_equal(a[0], b[0]) for a, b in zip(streamed, expected[2:5]))


def test_y4m_reports_its_frame_rate(data):
    assert open_source(data / "a.y4m").fps == 25.0


def test_container_streams_native_planes_and_seeks(clip, data):
    source = open_source(clip)
    assert (source.width, source.height, source.pix_fmt, source.fps, len(source)) == (1280, 720, "yuv420p", 25.0, 132)
    # ffmpeg's own decoding of frames 5 and 6; reading starts mid-stream, goes on, then seeks back.
    decoded = np.frombuffer(ffmpeg_bytes("-i", clip, "-frames:v", 7, "-f", "rawvideo", "-pix_fmt", "yuv420p", "-"),
                            dtype=np.uint8).reshape(7, -1)[:, :1280 * 720].reshape(7, 720, 1280)
    assert not np.array_equal(decoded[5], decoded[6])
    np.testing.assert_array_equal(source.read(5)[0], decoded[5])
    np.testing.assert_array_equal(source.read(6)[0], decoded[6])
    np.testing.assert_array_equal(source.read(5)[0], decoded[5])
    # Frame 3 cropped equals the raw crop made by ffmpeg's crop filter.
    ref = open_source(data / "a.yuv", width=W, height=H, pix_fmt="yuv420p").read(3)[0]
    np.testing.assert_array_equal(source.read(3)[0][300:300 + H, 600:600 + W], ref)
    source.close()


def test_container_as_rgb24_matches_ffmpeg_png_export(data):
    h264 = data / "a.mkv"
    ffmpeg("-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{W}x{H}", "-i", data / "a.yuv", "-c:v", "ffv1", h264)
    with open_source(h264, pix_fmt="rgb24") as source:
        assert source.pix_fmt == "rgb24" and len(source) == N
        png = open_source(data / "official")
        for i in range(N):
            np.testing.assert_array_equal(source.read(i), png.read(i))


@pytest.mark.parametrize("folder", ["official", "dcvc"])
def test_png_folders_in_both_layouts(data, folder):
    source = open_source(data / folder)
    assert (source.width, source.height, source.pix_fmt, source.bit_depth, len(source)) == (W, H, "rgb24", 8, N)
    frame = source.read(4)
    assert frame.shape == (H, W, 3) and frame.dtype == np.uint8
    rgb = np.frombuffer(ffmpeg_bytes("-i", data / folder / sorted((data / folder).iterdir())[4].name,
                                     "-f", "rawvideo", "-pix_fmt", "rgb24", "-"), dtype=np.uint8)
    np.testing.assert_array_equal(frame, rgb.reshape(H, W, 3))


def test_raw_gbrp10le_is_read_as_rgb_in_r_g_b_order(tmp_path):
    rng = np.random.default_rng(1)
    planes = rng.integers(0, 1024, size=(2, 3, 8, 16), dtype=np.uint16)  # 2 frames of G, B, R planes
    path = tmp_path / "x.rgb"
    planes.astype("<u2").tofile(path)
    source = open_source(path, width=16, height=8, pix_fmt="gbrp10le")
    assert (len(source), source.bit_depth, source.is_yuv) == (2, 10, False)
    # ffmpeg's reading of the same file: rgb48le holds the 10-bit values shifted up by 6 bits (plus replicated bits).
    ref = np.frombuffer(ffmpeg_bytes("-f", "rawvideo", "-pix_fmt", "gbrp10le", "-s", "16x8", "-i", path,
                                     "-f", "rawvideo", "-pix_fmt", "rgb48le", "-"), dtype="<u2").reshape(2, 8, 16, 3)
    for i in range(2):
        frame = source.read(i)
        assert frame.shape == (8, 16, 3)
        np.testing.assert_array_equal(frame, ref[i] >> 6)
        np.testing.assert_array_equal(frame[..., 0], planes[i, 2])


def test_reading_a_few_frames_of_a_long_1080p_file_loads_only_those(tmp_path):
    frame_bytes = 1920 * 1080 * 3 // 2
    path = tmp_path / "long.yuv"
    with open(path, "wb") as f:  # sparse: 600 frames, 1.9 GB, no disk used
        f.truncate(600 * frame_bytes)

    def rss() -> int:
        return int(Path("/proc/self/statm").read_text().split()[1]) * 4096

    before = rss()
    source = open_source(path, width=1920, height=1080, pix_fmt="yuv420p", num_frames=96)
    frames = [source.read(i)[0].sum() for i in (0, 50, 95)]
    assert len(source) == 96 and frames == [0, 0, 0]
    assert rss() - before < 100 * 2**20


def test_raw_size_not_a_whole_number_of_frames(tmp_path):
    path = tmp_path / "bad.yuv"
    path.write_bytes(bytes(64 * 48 * 3 // 2 * 2 + 100))
    with pytest.raises(InputError, match=r"bad\.yuv: 9316 bytes.*64x48 yuv420p.*4608 bytes each.*2 frames and "
                                         r"100 bytes left over"):
        open_source(path, width=64, height=48, pix_fmt="yuv420p")


def test_8bit_file_declared_10bit_is_caught(data):
    # 8-bit bytes paired into 16-bit words give values far above 1023; the size happens to fit 3 10-bit frames.
    source = open_source(data / "a.yuv", width=W, height=H, pix_fmt="yuv420p10le")
    with pytest.raises(InputError, match=r"a\.yuv: frame 0 holds a sample of \d+, above 1023.*yuv420p10le"):
        source.read(0)


def test_raw_needs_geometry(data):
    with pytest.raises(InputError, match="needs width, height and pix_fmt"):
        open_source(data / "a.yuv", width=W)


def test_fewer_frames_than_requested(data, clip):
    with pytest.raises(InputError, match=r"a\.yuv: 10 frames requested, found only 6"):
        open_source(data / "a.yuv", width=W, height=H, pix_fmt="yuv420p", num_frames=10)
    with pytest.raises(InputError, match="200 frames requested, found only 132"):
        open_source(clip, num_frames=200)
    with pytest.raises(InputError, match=r"official: 7 frames requested, found only 6"):
        open_source(data / "official", num_frames=7)
    source = open_source(data / "a.y4m")
    with pytest.raises(InputError, match=r"frames 4\.\.7 .* the source has 6 frames"):
        list(source.frames(4, 4))


def test_missing_png_frame(data, tmp_path):
    folder = tmp_path / "gap"
    folder.mkdir()
    for n in (1, 2, 4):
        (folder / f"frame_{n}.png").write_bytes((data / "official" / f"frame_{n}.png").read_bytes())
    with pytest.raises(InputError, match="PNG frame number 3 is missing"):
        open_source(folder)
    assert len(open_source(folder, num_frames=2)) == 2  # the gap lies beyond the frames used


def test_truncated_png(data, tmp_path):
    folder = tmp_path / "cut"
    folder.mkdir()
    for n in (1, 2):
        (folder / f"frame_{n}.png").write_bytes((data / "official" / f"frame_{n}.png").read_bytes())
    whole = (folder / "frame_2.png").read_bytes()
    (folder / "frame_2.png").write_bytes(whole[:len(whole) // 2])
    source = open_source(folder)
    with pytest.raises(InputError, match=r"frame_2\.png: expected a readable PNG image, .*truncated"):
        source.read(1)


def test_declared_geometry_must_match(data):
    with pytest.raises(InputError, match="declared width 1920, the file has 64"):
        open_source(data / "a.y4m", width=1920)


def test_unreadable_container_and_missing_path(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video" * 10)
    with pytest.raises(InputError, match=r"junk\.mp4: expected a video file that ffmpeg can read"):
        open_source(junk)
    with pytest.raises(InputError, match="found nothing at this path"):
        open_source(tmp_path / "nope.yuv")


def test_y4m_errors(data, tmp_path):
    cut = tmp_path / "cut.y4m"
    cut.write_bytes((data / "a.y4m").read_bytes()[:-10])
    with pytest.raises(InputError, match=r"cut\.y4m: \d+ bytes after the header is not a whole number of 64x48 "
                                         r"yuv420p Y4M frames \(4614 bytes each .*5 frames and 4604 bytes left over"):
        open_source(cut)
    c444 = tmp_path / "c444.y4m"
    c444.write_bytes(b"YUV4MPEG2 W4 H2 F25:1 Ip C444\nFRAME\n" + bytes(24))
    with pytest.raises(InputError, match=r"c444\.y4m: Y4M colour space C444 is not supported"):
        open_source(c444)


def test_odd_sized_raw_yuv_has_rounded_up_chroma(clip, tmp_path):
    raw, y4m = tmp_path / "odd.yuv", tmp_path / "odd.y4m"
    ffmpeg("-i", clip, "-frames:v", 2, "-vf", "scale=63:47", "-f", "rawvideo", "-pix_fmt", "yuv420p", raw)
    ffmpeg("-i", clip, "-frames:v", 2, "-vf", "scale=63:47", "-pix_fmt", "yuv420p", y4m)
    a = open_source(raw, width=63, height=47, pix_fmt="yuv420p").read(1)
    b = open_source(y4m).read(1)
    assert [p.shape for p in a] == [(47, 63), (24, 32), (24, 32)]
    for pa, pb in zip(a, b):
        np.testing.assert_array_equal(pa, pb)
