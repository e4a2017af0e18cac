"""Test helpers for anchor generation: a tiny real clip, and a stand-in for VTM's EncoderApp / DecoderApp.

The stand-in is a real (crude) lossy codec: it quantises the 10-bit samples with VTM's QP step 2**((QP-4)/6) and
zlib-compresses them, so bits fall and PSNR falls as QP rises. It accepts VTM's command-line syntax, prints VTM-17.0's
version and summary lines, and appends each call's arguments to calls.jsonl beside it; if a file FAIL exists beside it,
EncoderApp exits with an error (to test retries). With --SEIDecodedPictureHash=1 the stream carries each picture's MD5
per plane and DecoderApp checks them, printing VTM-17.0's per-picture line and hash status; a file MISMATCH beside it
holding a POC makes that picture decode wrongly, as a decoder mismatch would (VTM's error line and exit status 1).
CI has no VTM; the real path is checked by hand (GENERATION.md).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.data.clips import bundled_clip_path
from bench.data.readers import ffmpeg_exe

TINY = {"width": 128, "height": 64, "fps": 25.0}


def tiny_clip(path: Path, frames: int = 6, start: int = 60) -> Path:
    """A 128x64 yuv420p crop of the bundled clip, from a part with motion (its first frames are almost still)."""
    subprocess.run([ffmpeg_exe(), "-v", "error", "-nostdin", "-y", "-i", str(bundled_clip_path()), "-vf",
                    f"trim=start_frame={start},setpts=PTS-STARTPTS,crop=128:64:576:328", "-frames:v", str(frames),
                    "-f", "rawvideo", "-pix_fmt", "yuv420p", str(path)], check=True)
    return path


_COMMON = '''
import hashlib, json, sys, zlib
from pathlib import Path
import numpy as np
HERE = Path(__file__).resolve().parent
def parse(argv):
    opts, i = {}, 0
    while i < len(argv):
        a = argv[i]
        if a.startswith("--"):
            k, _, v = a[2:].partition("=")
            opts[k] = v
            i += 1
        else:
            opts[a] = argv[i + 1]
            i += 2
    return opts
def step(qp):
    return 4 * 2 ** ((qp - 4) / 6)  # VTM's quantiser step, in 10-bit units
def md5s(frame, w, h, chroma):
    """Per-plane MD5 of one 10-bit picture, as VTM's decoded picture hash SEI carries them (Y, U, V)."""
    ny = w * h
    nc = ny if chroma == "444" else ny // 4
    planes = ((0, ny), (ny, ny + nc), (ny + nc, ny + 2 * nc))
    return [hashlib.md5(frame[a:b].astype("<u2").tobytes()).hexdigest() for a, b in planes]
with open(HERE / "calls.jsonl", "a") as f:
    f.write(json.dumps({"app": Path(sys.argv[0]).name, "argv": sys.argv[1:]}) + "\\n")
'''

_ENCODER = _COMMON + '''
o = parse(sys.argv[1:])
if (HERE / "FAIL").exists():
    print("fake EncoderApp: failing on purpose"); sys.exit(3)
assert Path(o["-c"]).is_file(), o["-c"]
w, h, n, qp = int(o["SourceWidth"]), int(o["SourceHeight"]), int(o["-f"]), int(o["-q"])
depth, chroma = int(o["InputBitDepth"]), o.get("InputChromaFormat", "420")
assert chroma == o.get("ChromaFormatIDC", "420")
samples = w * h * (3 if chroma == "444" else 1.5)
x = np.fromfile(o["InputFile"], dtype="<u2" if depth > 8 else np.uint8).astype(np.int32)
assert x.size == n * samples, (x.size, n * samples)
x10 = x << (10 - depth)
q = np.round(x10 / step(qp)).astype(np.int32)
rec = np.clip(np.round(q * step(qp)), 0, 1023)
meta = {"w": w, "h": h, "n": n, "qp": qp, "chroma": chroma}
if o.get("SEIDecodedPictureHash", "0") == "1":
    meta["md5"] = [md5s(frame, w, h, chroma) for frame in rec.reshape(n, -1)]
data = json.dumps(meta).encode() + b"\\n" + zlib.compress(q.tobytes(), 9)
Path(o["-b"]).write_bytes(data)
ny = w * h
per = rec.reshape(n, -1), x10.reshape(n, -1)
def psnr(a, b):
    return 10 * np.log10(1023 ** 2 / max(np.mean((a - b) ** 2), 1e-9))
print("VVCSoftware: VTM Encoder Version 17.0 [Linux][fake][64 bit] [SIMD=NONE]")
print("\\nLayerId  0")
print("\\tTotal Frames |  Bitrate      Y-PSNR   U-PSNR   V-PSNR   YUV-PSNR ")
yp = psnr(per[0][:, :ny], per[1][:, :ny])
print("\\t%-12d a  %-12.4f %-8.4f %-8.4f %-8.4f %-8.4f" % (n, len(data) * 8 * 25 / n / 1000, yp, yp, yp, yp))
'''

_DECODER = _COMMON + '''
o = parse(sys.argv[1:])
assert o["-d"] == "10"
head, _, payload = Path(o["-b"]).read_bytes().partition(b"\\n")
meta = json.loads(head)
q = np.frombuffer(zlib.decompress(payload), dtype=np.int32)
rec = np.clip(np.round(q * step(meta["qp"])), 0, 1023).astype("<u2").reshape(meta["n"], -1)
wrong = int((HERE / "MISMATCH").read_text()) if (HERE / "MISMATCH").exists() else None
print("VVCSoftware: VTM Decoder Version 17.0 [fake]")
errors = 0
for poc, frame in enumerate(rec):
    if poc == wrong:
        frame[0] ^= 1
    got = md5s(frame, meta["w"], meta["h"], meta["chroma"])
    line = "POC %4d LId:  0 TId: 0 ( %s, %s-SLICE, QP %2d ) [DT  0.001] [L0] [L1] " % (
        poc, "IDR_N_LP" if poc == 0 else "TRAIL", "I" if poc == 0 else "B", meta["qp"])
    if "md5" not in meta:
        line += "[:,(unk)] "
    elif got == meta["md5"][poc]:
        line += "[MD5:%s,(OK)] " % ",".join(got)
    else:
        errors += 1
        line += "[MD5:%s,(***ERROR***)] [rxMD5:%s] " % (",".join(got), ",".join(meta["md5"][poc]))
    print(line)
rec.tofile(o["-o"])
if errors:
    print("\\n\\n***ERROR*** A decoding mismatch occured: signalled md5sum does not match")
    sys.exit(1)
'''


def fake_vtm(folder: Path) -> dict[str, str]:
    """Write the stand-in EncoderApp, DecoderApp and a cfg file; returns the make_encoder('vtm') path options."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, body in (("EncoderApp", _ENCODER), ("DecoderApp", _DECODER)):
        script = folder / name
        script.write_text(f"#!{sys.executable}\n" + body)
        script.chmod(0o755)
        paths[name] = str(script)
    cfg = folder / "encoder_lowdelay_vtm.cfg"
    cfg.write_text("# stand-in for VTM's cfg/encoder_lowdelay_vtm.cfg\nGOPSize : 8\nInternalBitDepth : 10\n")
    return {"encoder_app": paths["EncoderApp"], "decoder_app": paths["DecoderApp"], "cfg": str(cfg)}
