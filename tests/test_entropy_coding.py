"""Entropy coding against the official streams of the golden cases.

The golden npz holds the symbols the release coded, its CDF indexes for the Gaussian latents and its
complete bitstream. We split that bitstream (the release's SPS/NAL layout, golden README §5 and SPEC §5.3)
and check that (a) Gaussian strings are byte-identical to the release's, (b) our z tables decode the
release's own z strings exactly (so the probabilities are the release's), (c) our sizes stay within the
golden tolerances, (d) everything decodes back to the symbols, (e) with the intra network, the I-frame
string equals the release's (on the stable case A; within the tolerances on the chaotic case B) and decodes
to the encoder's reconstruction.
"""
import math

import golden
import numpy as np
import pytest
import torch
from scipy.stats import norm

from hytip import bitstream as bs
from hytip import entropy_coding as ec
from hytip.checkpoint import remap_state_dict
from hytip.entropy_models import BitEstimator, GaussianConditional
from hytip.intra import IntraCoder

CASES = ("A", "B")
Z_MODELS = {"I_z": "if_model.module.net.bit_estimator_z.",
            "P_mv_z": "CondMotion.module.net.bit_estimator_z_mv.",
            "P_z": "Residual.module.net.bit_estimator_z."}
P_STRING_ORDER = ("mv_y", "mv_z", "y0", "y1", "y2", "y3", "z")


def split_official_stream(buf: bytes) -> list[list[bytes]]:
    """Strings per frame of an official HyTIP stream: SPS NALs (type 0) are skipped, an I NAL (type 1) holds
    one string and a P NAL (type 2) seven, each behind a big-endian 2- or 4-byte "adaptive" length."""
    pos, frames = 0, []

    def adaptive_uint():
        nonlocal pos
        if buf[pos] >> 7 == 0:
            pos += 2
            return int.from_bytes(buf[pos - 2:pos], "big")
        pos += 4
        return int.from_bytes(buf[pos - 4:pos], "big") & 0x7FFFFFFF

    while pos < len(buf):
        nal_type = buf[pos] >> 4
        pos += 1
        if nal_type == 0:
            adaptive_uint(), adaptive_uint()
            pos += 1
            continue
        strings = []
        for _ in range({1: 1, 2: 7}[nal_type]):
            n = adaptive_uint()
            strings.append(buf[pos:pos + n])
            pos += n
        frames.append(strings)
    return frames


def decode_byte_rans(data: bytes, indexes, table: ec.CdfTable) -> list[int]:
    """Reference decoder for the release's P-frame z coder (MLCodec_rans_Inter): byte-wise rANS with
    L = 2^23, 16-bit probabilities and 2-bit bypass chunks, after a 1-byte stream flag. Independent of
    CompressAI; a table that differs from the release's in any used entry derails it."""
    assert data[0] == 0x01, "one sub-stream with 2-byte sizes"
    buf, pos = data[1:], 4
    x = int.from_bytes(buf[:4], "little")

    def refill():
        nonlocal x, pos
        while x < 1 << 23:
            x = (x << 8) | buf[pos]
            pos += 1

    def bits2():
        nonlocal x, pos
        v, x = x & 3, x >> 2
        if x < 1 << 23:
            x = (x << 8) | buf[pos]
            pos += 1
        return v

    out = []
    for i in indexes:
        cdf, top = table.cdfs[i], table.lengths[i] - 2
        cum = x & 0xFFFF
        s = max(k for k in range(top + 1) if cdf[k] <= cum)
        x = (cdf[s + 1] - cdf[s]) * (x >> 16) + cum - cdf[s]
        refill()
        value = s
        if s == top:
            n = v = bits2()
            while v == 3:
                v = bits2()
                n += v
            raw = sum(bits2() << (2 * j) for j in range(n))
            value = -(raw >> 1) - 1 if raw & 1 else (raw >> 1) + top
        out.append(value + table.offsets[i])
    return out


@pytest.fixture(scope="module")
def small_params():
    return torch.load(golden.DATA_DIR / "small_params.pt", map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def z_tables(small_params):
    tables = {}
    for name, prefix in Z_MODELS.items():
        sd = {k[len(prefix):]: v for k, v in small_params.items() if k.startswith(prefix)}
        be = BitEstimator(sd["f1.h"].shape[1])
        be.load_state_dict(sd)
        tables[name] = ec.factorized_table(be)
    return tables


@pytest.fixture(scope="module")
def gaussian_table():
    gc = GaussianConditional()
    gc.update()
    return gc, ec.CdfTable.from_gaussian_conditional(gc)


@pytest.fixture(scope="module", params=CASES)
def case(request):
    c = golden.load_case(request.param)
    c["name"] = request.param
    c["official"] = split_official_stream(c["bitstream"].tobytes())
    return c


def test_official_stream_split_matches_recorded_lengths(case):
    lengths = [[len(s) for s in f] + [-1] * (7 - len(f)) for f in case["official"]]
    np.testing.assert_array_equal(lengths, case["string_bytes"])


def test_gaussian_strings_are_the_official_bytes(case, gaussian_table):
    _, table = gaussian_table
    for t, strings in enumerate(case["official"][1:]):
        mv = ec.encode(case["sym_P_mv_y"][t], case["cdfidx_P_mv_y"][t], table)
        assert mv == strings[0]
        np.testing.assert_array_equal(ec.decode(mv, case["cdfidx_P_mv_y"][t], table), case["sym_P_mv_y"][t])
        for k in range(4):
            sym, idx = case["sym_P_y_steps"][t, k], case["cdfidx_P_y_steps"][t, k]
            s = ec.encode(sym, idx, table)
            assert s == strings[2 + k], f"P-frame {t + 1}, y step {k}"
            np.testing.assert_array_equal(ec.decode(s, idx, table), sym)


def test_gaussian_indexes_follow_compressai_rule(gaussian_table):
    """The golden indexes are `build_indexes`: 63 − #{first 63 table scales ≥ max(σ, 0.11)}."""
    gc, _ = gaussian_table
    st = gc.scale_table.double()
    assert torch.allclose(st, torch.exp(torch.linspace(math.log(0.11), math.log(256), 64, dtype=torch.float64)),
                          rtol=1e-6)
    sigma = torch.tensor([0.01, 0.11, 0.1101, 0.5, 3.0, 255.0, 256.0, 1e6])
    floor = gc.scale_table[0].item()                      # 0.11 as float32
    want = [int(63 - (st[:-1] >= max(s, floor)).sum()) for s in sigma.double().tolist()]
    assert want == [0, 0, 1, 13, 27, 63, 63, 63]
    assert gc.build_indexes(sigma).tolist() == want


def test_intra_z_tables_decode_official_intra_stream(case, z_tables):
    """The release's intra string is one Rans64 stream (z first) behind a 1-byte flag; our z tables must
    read its z part back exactly."""
    sym = case["sym_I_z"][None].astype(np.int64)
    data = case["official"][0][0]
    assert data[0] == 0x01
    dec = ec.StreamDecoder(data[1:], sym.size)
    np.testing.assert_array_equal(dec.take(ec.channel_indexes(sym.shape), z_tables["I_z"]), sym)


@pytest.mark.parametrize("name, column", [("P_mv_z", 1), ("P_z", 6)])
def test_p_frame_z_tables_decode_official_strings(case, z_tables, name, column):
    table = z_tables[name]
    for t, strings in enumerate(case["official"][1:]):
        sym = case["sym_" + name][t][None]
        idx = ec.channel_indexes(sym.shape).reshape(-1).tolist()
        assert decode_byte_rans(strings[column], idx, table) == sym.reshape(-1).tolist()


def test_sizes_within_golden_tolerances(case, gaussian_table, z_tables):
    """Per string and per P-frame within README §8's byte tolerances of the release's bytes: our z coder is
    not the release's (the intra string is checked with the network below)."""
    _, gt = gaussian_table
    for t in range(len(case["official"]) - 1):
        ours = {"mv_y": ec.encode(case["sym_P_mv_y"][t], case["cdfidx_P_mv_y"][t], gt)}
        for k in range(4):
            ours[f"y{k}"] = ec.encode(case["sym_P_y_steps"][t, k], case["cdfidx_P_y_steps"][t, k], gt)
        for key, name in (("mv_z", "P_mv_z"), ("z", "P_z")):
            sym = case["sym_" + name][t][None]
            idx = ec.channel_indexes(sym.shape)
            ours[key] = ec.encode(sym, idx, z_tables[name])
            np.testing.assert_array_equal(ec.decode(ours[key], idx, z_tables[name]), sym)
        official = case["string_bytes"][t + 1]
        for j, key in enumerate(P_STRING_ORDER):
            assert abs(len(ours[key]) - official[j]) <= golden.STRING_BYTES_REL * official[j], \
                (t + 1, key, len(ours[key]), official[j])
        total = sum(len(s) for s in ours.values())
        assert abs(total - case["frame_bytes"][t + 1]) <= golden.FRAME_BYTES_REL * case["frame_bytes"][t + 1]


@pytest.fixture(scope="module")
def intra():
    """The golden checkpoint's intra coder (hytip.intra), in the official single-thread setting."""
    raw = torch.load(golden.golden_checkpoint_path(), map_location="cpu", weights_only=True)["state_dict"]
    holder = torch.nn.Module()
    holder.if_model = IntraCoder()
    holder.load_state_dict({k: v for k, v in remap_state_dict(raw).items() if k.startswith("if_model.")})
    holder.if_model.interpolate()
    return holder.if_model.eval()


def test_intra_string_is_official_and_decodes_to_encoder_recon(case, intra):
    """z then the four y steps in one string, with σ from the network: the release's bytes after its
    1-byte stream flag on A (README §8: A's bytes never changed); on B, where the release itself rounds a few
    symbols differently under other kernels, the length within tolerance. Decoding it through the network
    gives the encoder's reconstruction exactly (ours, so on both)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        x = torch.from_numpy(case["input_frames"][0]).permute(2, 0, 1).float().div(255).unsqueeze(0).contiguous()
        q = int(case["qp"][0])
        z_table, y_table = ec.factorized_table(intra.net.bit_estimator_z), ec.intra_gaussian_table()
        with torch.no_grad():
            out = intra.encode(x, q)
        enc = ec.StreamEncoder()
        enc.add(out["z_hat"], ec.channel_indexes(out["z_hat"].shape), z_table)
        for sym, scales in zip(out["sym_steps"], out["scale_steps"]):
            enc.add(sym, ec.intra_scale_indexes(scales), y_table)
        data = enc.finish()
        official = case["official"][0][0][1:]
        tol = golden.TOLERANCE[case["name"]]
        assert abs(len(data) - len(official)) <= tol.string_bytes_rel * len(official)
        if tol.string_bytes_rel == 0:                   # exact sizes on A: the bytes must be the release's too
            assert data == official

        dec = ec.StreamDecoder(data, out["z_hat"].numel() + sum(s.numel() for s in out["sym_steps"]))
        z_hat = dec.take(ec.channel_indexes(out["z_hat"].shape), z_table).float()
        x_dec = intra.decode(z_hat, lambda k, scales: dec.take(ec.intra_scale_indexes(scales), y_table), q,
                             *x.shape[-2:])
        assert torch.equal(x_dec, out["x_hat"])
    finally:
        torch.set_num_threads(threads)


def test_intra_stream_round_trip(case, z_tables):
    """z and four y steps in one string, y steps indexed from synthetic σ over the whole table range."""
    gen = torch.Generator().manual_seed(7)
    z = torch.from_numpy(case["sym_I_z"][None].astype(np.int64))
    y = torch.from_numpy(case["sym_I_y_steps"].astype(np.int64))
    sigma = torch.exp(torch.empty(y.shape).uniform_(math.log(1e-3), math.log(200.0), generator=gen))
    idx = ec.intra_scale_indexes(sigma)
    assert idx.min() == 0 and idx.max() == 255
    enc = ec.StreamEncoder()
    enc.add(z, ec.channel_indexes(z.shape), z_tables["I_z"])
    for k in range(4):
        enc.add(y[k], idx[k], ec.intra_gaussian_table())
    data = enc.finish()
    dec = ec.StreamDecoder(data, z.numel() + y.numel())
    decoded = [dec.take(ec.channel_indexes(z.shape), z_tables["I_z"])]
    for k in range(4):
        decoded.append(dec.take(idx[k], ec.intra_gaussian_table()))
        np.testing.assert_array_equal(decoded[-1], y[k])
    assert ec.symbols_crc32(decoded) == ec.symbols_crc32([z.float(), *y])


def test_intra_gaussian_table_matches_normal_distribution():
    """Support and probabilities against scipy's normal in float64 (independent of the float32 build)."""
    table = ec.intra_gaussian_table()
    assert len(table) == 256
    sigmas = np.exp(np.linspace(math.log(0.11), math.log(64.0), 256))
    for i in (0, 1, 37, 128, 200, 255):
        s = sigmas[i]
        c = next((k for k in range(2, 51) if norm.cdf(k / s) > 0.9999), 50)
        assert table.offsets[i] == -c and table.lengths[i] == 2 * c + 3
        x = np.arange(-c, c + 1)
        pmf = norm.cdf((x + 0.5) / s) - norm.cdf((x - 0.5) / s)
        want = np.append(pmf, 2 * norm.cdf((-c - 0.5) / s))
        freq = np.diff(table.cdfs[i][:table.lengths[i]]) / 2 ** 16
        # 16-bit rounding and renormalisation (a few counts), every bin at least one count; the counts that
        # floor takes come off the mode
        others = np.arange(want.size) != np.argmax(want)
        np.testing.assert_allclose(freq[others], np.maximum(want[others], 2 ** -16), atol=3 / 2 ** 16)


def test_intra_scale_indexes():
    sigmas = np.exp(np.linspace(math.log(0.11), math.log(64.0), 256))
    mid = torch.tensor(np.sqrt(sigmas[:-1] * sigmas[1:]), dtype=torch.float32)   # between two table scales
    assert ec.intra_scale_indexes(mid).tolist() == list(range(255))
    edge = torch.tensor([0.0, -1.0, 1e-7, 0.05, 64.5, 1e9])
    assert ec.intra_scale_indexes(edge).tolist() == [0, 0, 0, 0, 255, 255]


def test_out_of_support_symbols_use_bypass(z_tables):
    table = z_tables["P_z"]
    sym = torch.tensor([[0, 1, -1, 90, -90, 5000, -5000, ec.MAX_ABS_SYMBOL]]).reshape(1, 1, 1, 8).expand(1, 64, 1, 8)
    idx = ec.channel_indexes(sym.shape)
    data = ec.encode(sym, idx, table)
    assert data == ec.encode(sym.clone(), idx, table)
    np.testing.assert_array_equal(ec.decode(data, idx, table), sym)


def test_bad_inputs_are_clean_errors(gaussian_table):
    _, table = gaussian_table
    sym = torch.zeros(4)
    with pytest.raises(ec.EntropyCodingError, match="indexes span"):
        ec.encode(sym, torch.tensor([0, 1, 2, 64]), table)
    with pytest.raises(ec.EntropyCodingError, match="integers"):
        ec.encode(torch.tensor([0.5, 0, 0, 0]), torch.zeros(4, dtype=torch.int32), table)
    with pytest.raises(ec.EntropyCodingError, match="3 indexes"):
        ec.encode(sym, torch.zeros(3, dtype=torch.int32), table)
    with pytest.raises(ec.EntropyCodingError, match="exceeds"):
        ec.encode(torch.tensor([ec.MAX_ABS_SYMBOL + 1]), torch.zeros(1, dtype=torch.int32), table)
    with pytest.raises(ec.EntropyCodingError, match="multiple of 4"):
        ec.decode(b"\x00" * 6, torch.zeros(4, dtype=torch.int32), table)
    dec = ec.StreamDecoder(ec.encode(sym, torch.zeros(4, dtype=torch.int32), table), 4)
    dec.take(torch.zeros(3, dtype=torch.int32), table)
    with pytest.raises(ec.EntropyCodingError, match="opened for 1 more"):
        dec.take(torch.zeros(2, dtype=torch.int32), table)
    with pytest.raises(ec.EntropyCodingError, match="strictly rising"):
        ec.CdfTable([[0, 40000, 40000, 65536]], [4], [0])
    with pytest.raises(ec.EntropyCodingError, match="update"):
        ec.CdfTable.from_gaussian_conditional(GaussianConditional())


def test_desynchronised_decoder_is_detected_by_symbol_crc(gaussian_table):
    """Decoding with other indexes than the encoder's (what a float mismatch on σ causes) yields other
    symbols, without a crash, and the symbol CRC tells."""
    _, table = gaussian_table
    gen = torch.Generator().manual_seed(3)
    idx = torch.randint(0, 40, (2000,), generator=gen, dtype=torch.int32)
    sym = torch.randint(-6, 7, (2000,), generator=gen)
    data = ec.encode(sym, idx, table)
    assert ec.symbols_crc32([ec.decode(data, idx, table)]) == ec.symbols_crc32([sym])
    wrong = idx.clone()
    wrong[1000] = 39 - wrong[1000]
    assert ec.symbols_crc32([ec.decode(data, wrong, table)]) != ec.symbols_crc32([sym])
    # the CRC is of the values, not of their dtype or shape
    assert ec.symbols_crc32([sym.float().reshape(40, 50)]) == ec.symbols_crc32([sym.numpy()])


def test_sequence_through_container(case, gaussian_table, z_tables, tmp_path):
    """All frames of a case coded, written to our container, read back and decoded to the same symbols;
    the file is within README §8's frame tolerance of the release's whole stream. The I string is the
    release's minus its flag, which the intra test above shows equals ours on A."""
    _, gt = gaussian_table
    i_syms = [case["sym_I_z"][None], *case["sym_I_y_steps"]]
    frames = [bs.FrameRecord(bs.FrameType.I, (case["official"][0][0][1:],), ec.symbols_crc32(i_syms))]
    p_parts = []
    for t in range(len(case["official"]) - 1):
        mv_z, z = case["sym_P_mv_z"][t][None], case["sym_P_z"][t][None]
        parts = [(case["sym_P_mv_y"][t], case["cdfidx_P_mv_y"][t], gt),
                 (mv_z, ec.channel_indexes(mv_z.shape), z_tables["P_mv_z"]),
                 *[(case["sym_P_y_steps"][t, k], case["cdfidx_P_y_steps"][t, k], gt) for k in range(4)],
                 (z, ec.channel_indexes(z.shape), z_tables["P_z"])]
        p_parts.append(parts)
        frames.append(bs.FrameRecord(bs.FrameType.P, tuple(ec.encode(*p) for p in parts),
                                     ec.symbols_crc32(p[0] for p in parts)))
    h, w = case["input_frames"].shape[1:3]
    header = bs.SequenceHeader(w, h, len(frames), len(frames), int(case["qp"][1]), int(case["qp"][0]), bytes(8))
    path = tmp_path / "seq.hytip"
    size = bs.write(path, header, frames)
    assert abs(size - case["bitstream"].size) <= golden.FRAME_BYTES_REL * case["bitstream"].size

    header_read, records = bs.read(path)
    assert header_read == header
    for parts, record in zip(p_parts, records[1:]):
        decoded = [ec.decode(s, idx, table) for s, (_, idx, table) in zip(record.strings, parts)]
        for got, (want, _, _) in zip(decoded, parts):
            np.testing.assert_array_equal(got, want)
        assert ec.symbols_crc32(decoded) == record.symbols_crc
