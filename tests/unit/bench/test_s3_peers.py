"""The S3 benchmark's nginx peer: its own config, loopback only, the files served as they are, stopped by PID."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from bench.peers import start_nginx
from bench.proc import process_tree
from bench.s3_wire import Wire, frame


def test_nginx_serves_the_files_on_loopback_and_stops() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-s3-test-") as tmp:  # in /tmp: nginx's workers (nobody) get in
        _serve_and_stop(Path(tmp))


def _serve_and_stop(tmp: Path) -> None:
    www = tmp / "www"
    (www / "bucket").mkdir(parents=True)
    for path in (tmp, www, www / "bucket"):
        path.chmod(0o755)
    body = os.urandom(3 * 1024 * 1024 + 17)
    (www / "bucket" / "key").write_bytes(body)
    peer = start_nginx(www)
    pids = process_tree(peer.pid)
    try:
        assert len(pids) >= 2  # master and worker(s)
        listening = subprocess.run(["ss", "-Htlnp"], capture_output=True, text=True, check=True).stdout
        ours = [line for line in listening.splitlines() if any(f"pid={p}," in line for p in pids)]
        assert ours and all(f"127.0.0.1:{peer.port} " in line for line in ours), ours
        wire = Wire(peer.port, timeout=10)
        got = bytearray()
        response = wire.request(frame("GET", "/bucket/key?X-Amz-Signature=ignored", f"127.0.0.1:{peer.port}"),
                                lambda piece, offset: got.extend(piece))
        assert response.status == 200 and response.length == len(body) and bytes(got) == body
        assert wire.request(frame("GET", "/bucket/missing", f"127.0.0.1:{peer.port}")).status == 404
        wire.close()
    finally:
        peer.stop()
    assert not any(Path(f"/proc/{p}").exists() and "nginx" in Path(f"/proc/{p}/cmdline").read_text() for p in pids)
