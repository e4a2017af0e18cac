"""Fetching checkpoints from a local HTTP server on 127.0.0.1 that serves the golden checkpoint: progress, resume
after a cut connection (HTTP Range), a corrupt download rejected, the command line."""
import hashlib
import threading
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import golden
from bench.cli import main
from bench.codecs import weights


class Handler(BaseHTTPRequestHandler):
    """Serves `files` (name -> bytes) with Range support; `cut` (name -> bytes) ends the first response early."""

    def __init__(self, *args, files, cut, log, **kwargs):
        self.files, self.cut, self.log = files, cut, log
        super().__init__(*args, **kwargs)

    def do_GET(self):
        name = self.path.rsplit("/", 1)[-1]
        self.log.append((name, self.headers.get("Range")))
        if name not in self.files:
            self.send_error(404)
            return
        data, start = self.files[name], 0
        if self.headers.get("Range"):
            start = int(self.headers["Range"].split("=")[1].rstrip("-"))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        limit = self.cut.pop(name, None)
        self.wfile.write(data[start:] if limit is None else data[start:limit])  # a cut connection sends less

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path, monkeypatch):
    files, cut, log = {}, {}, []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, files=files, cut=cut, log=log))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv(weights.URL_ENV, f"http://127.0.0.1:{httpd.server_port}/ModelWeights")
    monkeypatch.setattr(weights, "cache_dir", lambda: tmp_path / "cache")  # (the golden checkpoint's cache stays)
    yield files, cut, log
    httpd.shutdown()


@pytest.fixture(scope="module")
def checkpoint_bytes():
    return golden.golden_checkpoint_path().read_bytes()


def test_cut_connection_resumes_and_the_file_is_checked(server, checkpoint_bytes, capsys):
    files, cut, log = server
    files["PSNR-RGB.pth.tar"] = checkpoint_bytes
    cut["PSNR-RGB.pth.tar"] = len(checkpoint_bytes) // 3
    with pytest.raises(weights.DownloadError, match="the next try resumes"):
        weights.fetch("PSNR-RGB", timeout=10)
    part = weights.cache_dir() / "PSNR-RGB.pth.tar.part"
    assert part.stat().st_size == len(checkpoint_bytes) // 3
    path = weights.fetch("PSNR-RGB", timeout=10)
    assert log == [("PSNR-RGB.pth.tar", None), ("PSNR-RGB.pth.tar", f"bytes={len(checkpoint_bytes) // 3}-")]
    assert path.read_bytes() == checkpoint_bytes and not part.exists()
    assert (path.parent / "PSNR-RGB.pth.tar.sha256").read_text().strip() == hashlib.sha256(checkpoint_bytes).hexdigest()
    assert "PSNR-RGB.pth.tar" in capsys.readouterr().err  # the progress bar
    assert weights.fetch("PSNR-RGB") == path and len(log) == 2  # cached: no request


def test_corrupt_download_is_rejected_and_removed(server, checkpoint_bytes):
    files, _, _ = server
    files["MS-SSIM-RGB.pth.tar"] = checkpoint_bytes[:1000] + b"\0" * 5000  # right start, garbage after
    with pytest.raises(weights.DownloadError, match="not a HyTIP checkpoint"):
        weights.fetch("MS-SSIM-RGB", progress=False, timeout=10)
    assert not list(weights.cache_dir().iterdir())


def test_fetch_weights_command_names_each_file_and_its_sha256(server, checkpoint_bytes, capsys):
    files, _, _ = server
    files["PSNR-RGB.pth.tar"] = checkpoint_bytes
    assert main(["fetch-weights", "--models", "PSNR-RGB", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"PSNR-RGB: {weights.cache_dir() / 'PSNR-RGB.pth.tar'} (sha256 {hashlib.sha256(checkpoint_bytes).hexdigest()})" in out
    assert main(["fetch-weights", "--models", "MS-SSIM-RGB", "--no-progress"]) == 2  # 404 on the server
    assert "cannot fetch http://127.0.0.1" in capsys.readouterr().err
