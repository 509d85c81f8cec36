"""The official OCI distribution-spec conformance suites against ``minicloud up``.

The suites are not part of this repository. Build them from a snapshot of
opencontainers/distribution-spec into ``$MINICLOUD_OCI_CONFORMANCE`` (default ``/tmp/dspec``):

- ``conformance-main``: ``conformance/`` of the main branch (needs Go 1.24: Debian trixie's
  ``golang-1.24-go``; its four modules replaced by local snapshots in go.mod), ``go build``.
- ``conformance-v111.test``: ``conformance/`` of tag v1.1.1 (Go >= 1.20; its 17 modules replaced by
  local snapshots), ``go test -c``.

The tests skip when the binaries are absent. ``sparse`` data (manifests naming blobs that were never
pushed; off by default in the suite) is left off: minicloud refuses them with MANIFEST_BLOB_UNKNOWN.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support.server import MinicloudServer

SUITES = Path(os.environ.get("MINICLOUD_OCI_CONFORMANCE", "/tmp/dspec"))


def _env(server: MinicloudServer) -> dict[str, str]:
    assert server.root is not None
    return {**os.environ, "OCI_USERNAME": server.root.access_key_id, "OCI_PASSWORD": server.root.secret_access_key}


@pytest.mark.skipif(not (SUITES / "conformance-main").exists(), reason="conformance suite (main) not built")
def test_conformance_main(server: MinicloudServer, tmp_path: Path) -> None:
    env = {**_env(server), "OCI_REGISTRY": f"127.0.0.1:{server.port}", "OCI_TLS": "disabled",
           "OCI_REPO1": "conformance/main1", "OCI_REPO2": "conformance/main2", "OCI_RESULTS_DIR": str(tmp_path),
           "OCI_API_BLOBS_UPLOAD_CANCEL": "true", "OCI_API_BLOBS_MOUNT_ANONYMOUS": "true",
           "OCI_API_MANIFESTS_TAG_PARAM": "true"}
    result = subprocess.run([str(SUITES / "conformance-main")], env=env, cwd=tmp_path, capture_output=True,
                            text=True, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "OCI Conformance Result: Pass" in output, output[-6000:]


@pytest.mark.skipif(not (SUITES / "conformance-v111.test").exists(), reason="conformance suite (v1.1.1) not built")
def test_conformance_v1_1_1(server: MinicloudServer, tmp_path: Path) -> None:
    env = {**_env(server), "OCI_ROOT_URL": server.endpoint, "OCI_NAMESPACE": "conformance/v111a",
           "OCI_CROSSMOUNT_NAMESPACE": "conformance/v111b", "OCI_TEST_PULL": "1", "OCI_TEST_PUSH": "1",
           "OCI_TEST_CONTENT_DISCOVERY": "1", "OCI_TEST_CONTENT_MANAGEMENT": "1", "OCI_HIDE_SKIPPED_WORKFLOWS": "0",
           "OCI_AUTOMATIC_CROSSMOUNT": "1", "OCI_REPORT_DIR": str(tmp_path)}
    result = subprocess.run([str(SUITES / "conformance-v111.test")], env=env, cwd=tmp_path, capture_output=True,
                            text=True, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "0 Failed" in output, output[-6000:]
