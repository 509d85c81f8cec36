"""ORAS (the oras-py client from PyPI) pushes and pulls an OCI artifact, chunked and monolithic."""

from __future__ import annotations

import os
from pathlib import Path

import oras.client

from tests.support.server import MinicloudServer


def _client(server: MinicloudServer, config: Path) -> oras.client.OrasClient:
    assert server.root is not None
    config.write_text('{"auths": {}}')  # oras keeps its logins there, like docker's config.json
    # Basic credentials on every request, the way ECR is used (its login is Basic auth)
    client = oras.client.OrasClient(hostname=f"127.0.0.1:{server.port}", insecure=True, auth_backend="basic")
    client.login(username=server.root.access_key_id, password=server.root.secret_access_key,
                 hostname=f"127.0.0.1:{server.port}", tls_verify=False, config_path=str(config))
    return client


def test_push_and_pull_an_artifact(server: MinicloudServer, tmp_path: Path) -> None:
    source = tmp_path / "notes.txt"
    source.write_text("an artifact, not an image\n")
    big = tmp_path / "model.bin"
    big.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    client = _client(server, tmp_path / "oras-config.json")
    os.chdir(tmp_path)  # oras stores files by their relative names
    target = f"127.0.0.1:{server.port}/artifacts/notes:v1"
    pushed = client.push(target=target, files=["notes.txt", "model.bin"], do_chunked=True, chunk_size=1024 * 1024)
    assert pushed.status_code == 201
    out = tmp_path / "out"
    files = client.pull(target=target, outdir=str(out))
    assert sorted(Path(f).name for f in files) == ["model.bin", "notes.txt"]
    assert (out / "notes.txt").read_text() == "an artifact, not an image\n"
    assert (out / "model.bin").read_bytes() == big.read_bytes()
    tags = client.get_tags(f"127.0.0.1:{server.port}/artifacts/notes")
    assert "v1" in tags
