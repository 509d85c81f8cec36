"""`minicloud up` as a user meets it: start, health, credentials, clean stop, restart, kill -9."""

from __future__ import annotations

import contextlib
import json
import signal
import stat
import subprocess
import sys
import urllib.request

import pytest
from botocore.exceptions import ClientError

from tests.support.postgres import PostgresServer
from tests.support.server import REPO, Keys, MinicloudServer


def _health(server: MinicloudServer) -> dict[str, object]:
    with urllib.request.urlopen(f"{server.endpoint}/_minicloud/health", timeout=5) as response:
        assert response.headers["content-type"] == "application/json"
        result: dict[str, object] = json.loads(response.read())
        return result


def test_health_reports_every_service(server: MinicloudServer) -> None:
    health = _health(server)
    assert health["status"] == "running"
    services = health["services"]
    assert isinstance(services, dict)
    assert {"iam", "sts", "organizations"} <= set(services)
    assert health["regions"] == ["us-east-1"]


def test_root_credentials_are_kept_private(server: MinicloudServer) -> None:
    creds = server.data_dir / "credentials.json"
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    assert len(server.account_id) == 12 and server.account_id.isdigit()


def test_get_caller_identity_with_the_cli(server: MinicloudServer) -> None:
    identity = server.aws_json("sts", "get-caller-identity")
    assert identity == {"UserId": server.account_id, "Account": server.account_id,
                        "Arn": f"arn:aws:iam::{server.account_id}:root"}


def test_wrong_secret_is_refused(server: MinicloudServer) -> None:
    assert server.root is not None
    bad = Keys(server.root.access_key_id, "x" * 40)
    with pytest.raises(ClientError) as err:
        server.client("sts", keys=bad).get_caller_identity()
    assert err.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_unknown_key_is_refused(server: MinicloudServer) -> None:
    with pytest.raises(ClientError) as err:
        server.client("iam", keys=Keys("AKIAUNKNOWNUNKNOWN00", "y" * 40)).list_users()
    assert err.value.response["Error"]["Code"] == "InvalidClientTokenId"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_unknown_region_is_refused(server: MinicloudServer) -> None:
    with pytest.raises(ClientError) as err:
        server.client("sts", region="xx-nowhere-1").get_caller_identity()
    assert err.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert "valid region" in err.value.response["Error"]["Message"]


def test_unsigned_request_is_refused(server: MinicloudServer) -> None:
    request = urllib.request.Request(f"{server.endpoint}/", data=b"Action=GetCallerIdentity&Version=2011-06-15",
                                     headers={"content-type": "application/x-www-form-urlencoded"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=5)
    assert err.value.code == 403
    body = err.value.read()
    assert b"<ErrorResponse" in body and b"MissingAuthenticationToken" in body  # IAM/STS's format, not S3's


def test_unimplemented_operation_says_so(server: MinicloudServer) -> None:
    with pytest.raises(ClientError) as err:
        server.client("sts").get_access_key_info(AccessKeyId="AKIAIOSFODNN7EXAMPLE")
    error = err.value.response["Error"]
    if error["Code"] != "NotImplemented":  # implemented since: then it must answer for real
        pytest.fail(f"unexpected error {error}")
    assert "GetAccessKeyInfo" in error["Message"]


def test_sigterm_stops_cleanly_and_restart_keeps_state(fresh_server: MinicloudServer) -> None:
    fresh_server.start()
    iam = fresh_server.client("iam")
    iam.create_user(UserName="survivor")
    account, keys = fresh_server.account_id, fresh_server.root
    assert fresh_server.stop(signal.SIGTERM) == 0
    fresh_server.start()
    assert (fresh_server.account_id, fresh_server.root) == (account, keys)
    assert [u["UserName"] for u in fresh_server.client("iam").list_users()["Users"]] == ["survivor"]


def test_acknowledged_writes_survive_kill_9(fresh_server: MinicloudServer) -> None:
    fresh_server.start()
    iam = fresh_server.client("iam")
    for i in range(25):
        iam.create_user(UserName=f"user{i}")
    fresh_server.kill()
    fresh_server.start()
    names = {u["UserName"] for u in fresh_server.client("iam").list_users(MaxItems=1000)["Users"]}
    assert names == {f"user{i}" for i in range(25)}


def test_root_keys_from_the_environment(fresh_server: MinicloudServer) -> None:
    fresh_server.env = {"MINICLOUD_ROOT_ACCESS_KEY_ID": "AKIAENVIRONMENTKEY01",
                        "MINICLOUD_ROOT_SECRET_ACCESS_KEY": "EnvironmentSecretKeyForMinicloudTests0001"}
    fresh_server.start()
    assert fresh_server.root == Keys("AKIAENVIRONMENTKEY01", "EnvironmentSecretKeyForMinicloudTests0001")
    assert fresh_server.client("sts").get_caller_identity()["Account"] == fresh_server.account_id


def test_accounts_command_creates_an_isolated_account(server: MinicloudServer) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "minicloud.cli", "accounts", "create", "isolated-team",
         "--data-dir", str(server.data_dir)],
        capture_output=True, text=True, check=True, cwd=REPO,
    ).stdout
    fields = dict(line.split(":", 1) for line in out.strip().splitlines())
    keys = Keys(fields["access key"].strip(), fields["secret key"].strip())
    other_account = fields["account"].strip()
    assert other_account != server.account_id
    identity = server.client("sts", keys=keys).get_caller_identity()
    assert identity["Account"] == other_account
    assert identity["Arn"] == f"arn:aws:iam::{other_account}:root"


def test_metadata_in_postgresql(fresh_server: MinicloudServer, postgres: PostgresServer) -> None:
    url = postgres.create_database("minicloud_up")
    fresh_server.extra_args = ["--metadata-url", url]
    fresh_server.start()
    fresh_server.client("iam").create_user(UserName="in-postgres")
    fresh_server.kill()
    fresh_server.start()
    users = fresh_server.client("iam").list_users()["Users"]
    assert [u["UserName"] for u in users] == ["in-postgres"]
    assert not (fresh_server.data_dir / "metadata.sqlite3").exists()


def test_oversized_body_is_refused(server: MinicloudServer) -> None:
    body = b"Action=ListUsers&Version=2010-05-08&Pad=" + b"x" * (65 * 1024 * 1024)
    request = urllib.request.Request(f"{server.endpoint}/", data=body,
                                     headers={"content-type": "application/x-www-form-urlencoded"})
    with pytest.raises((urllib.error.HTTPError, ConnectionError)) as err:
        urllib.request.urlopen(request, timeout=30)
    if isinstance(err.value, urllib.error.HTTPError):
        assert err.value.code == 413
    assert _health(server)["status"] == "running"


def test_an_endless_header_is_cut_off(server: MinicloudServer) -> None:
    import socket

    refused = False
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ")
        try:
            for _ in range(64):  # at most 64 MiB, far past the limit: the server must hang up first
                sock.sendall(b"a" * (1024 * 1024))
        except OSError:
            refused = True  # reset or broken pipe: the server closed the connection
        with contextlib.suppress(OSError):
            refused = sock.recv(1024).startswith(b"HTTP/1.1 431") or refused
    assert refused, "the server kept reading an endless header"
    assert _health(server)["status"] == "running"
