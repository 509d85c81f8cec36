"""The instance metadata service over a real socket: IMDSv1 and v2 as EC2 answers them, checked with
raw HTTP and with botocore's own IMDS fetchers (what the AWS CLI inside an instance uses).

Each loopback address (127.0.0.x) plays one instance: the server knows the asker by its source
address, as it knows an instance by its private IP in a VPC."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

import pytest
from botocore.utils import InstanceMetadataFetcher, InstanceMetadataRegionFetcher

from minicloud.services.ec2.imds import InstanceInfo, MetadataServer, RoleCredentials, TokenSigner, token_ttl

T = TypeVar("T")
VPC = "vpc-0a1b2c3d"
EXPIRES = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
BASE = InstanceInfo(
    instance_id="i-0123456789abcdef0", ami_id="ami-0fedcba987654321", instance_type="t3.micro",
    private_ip="127.0.0.1", public_ip="127.100.0.7", availability_zone="us-east-1b", region="us-east-1",
    hostname="ip-10-0-1-5.ec2.internal", mac="0e:12:34:56:78:9a", user_data=b"#!/bin/sh\necho hi\n",
    role_name="web-role", security_groups=("default", "web"), account_id="000000000000",
    vpc_id=VPC, vpc_cidr="10.0.0.0/16", subnet_id="subnet-0123", subnet_cidr="10.0.1.0/24",
    security_group_ids=("sg-1", "sg-2"), interface_id="eni-0abc", reservation_id="r-0123",
    launch_time=datetime(2026, 11, 29, 8, 0, tzinfo=UTC), public_keys=(("my-key", "ssh-ed25519 AAAAC3Nz test"),),
    instance_profile_arn="arn:aws:iam::000000000000:instance-profile/web", instance_profile_id="AIPAEXAMPLE")


class Instances:
    """The server's source: instances by (VPC, private IP); records credential requests."""

    def __init__(self) -> None:
        self.by_address: dict[tuple[str, str], InstanceInfo] = {}
        self.credential_calls: list[str] = []

    async def lookup(self, vpc_id: str, private_ip: str) -> InstanceInfo | None:
        return self.by_address.get((vpc_id, private_ip))

    async def credentials(self, info: InstanceInfo) -> RoleCredentials | None:
        self.credential_calls.append(info.instance_id)
        if info.instance_id.endswith("nocreds"):
            return None
        return RoleCredentials("ASIAEXAMPLEKEY", "secret/key+value", "session-token", EXPIRES,
                               datetime(2030, 1, 2, 2, 4, 5, tzinfo=UTC))


class Served:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.instances = Instances()
        self.server = MetadataServer(self.instances)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        self.port = sock.getsockname()[1]
        self.run(self.server.serve(VPC, sock))
        self.add("127.0.0.1")
        self.add("127.0.0.2", http_tokens="required", instance_id="i-required")
        self.add("127.0.0.3", http_endpoint="disabled")
        self.add("127.0.0.4", public_ip=None, user_data=None, role_name=None, public_keys=(), instance_id="i-plain")
        self.add("127.0.0.5", instance_id="i-nocreds")
        self.add("127.0.0.6", instance_metadata_tags=True, tags=(("Name", "web-1"), ("team", "ops")),
                 availability_zone_id="use1-az2")

    def add(self, ip: str, **changes: Any) -> None:
        self.instances.by_address[(VPC, ip)] = replace(BASE, private_ip=ip, **changes)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def request(self, method: str, path: str, headers: dict[str, str] | None = None, source: str = "127.0.0.1",
                ) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5, source_address=(source, 0))
        try:
            connection.request(method, path, headers=headers or {})
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()

    def get(self, path: str, source: str = "127.0.0.1", token: str | None = None) -> tuple[int, bytes]:
        status, _, body = self.request("GET", path, {"X-aws-ec2-metadata-token": token} if token else None, source)
        return status, body

    def token(self, source: str = "127.0.0.1", ttl: str = "21600") -> str:
        status, _, body = self.request("PUT", "/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": ttl},
                                       source)
        assert status == 200
        return body.decode()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def close(self) -> None:
        self.run(self.server.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    s = Served()
    yield s
    s.close()


def test_meta_data_listing_names_entries_and_directories(served: Served) -> None:
    status, body = served.get("/latest/meta-data/")
    assert status == 200
    entries = body.decode().split("\n")
    for name in ("ami-id", "instance-id", "instance-type", "local-ipv4", "public-ipv4", "local-hostname",
                 "public-hostname", "hostname", "mac", "placement/", "security-groups", "network/", "iam/",
                 "public-keys/", "block-device-mapping/", "services/"):
        assert name in entries
    assert entries == sorted(entries)
    assert served.get("/latest/meta-data")[1] == body  # without the slash, the same listing


def test_leaves(served: Served) -> None:
    expected = {
        "ami-id": "ami-0fedcba987654321", "instance-id": "i-0123456789abcdef0", "instance-type": "t3.micro",
        "local-ipv4": "127.0.0.1", "public-ipv4": "127.100.0.7", "local-hostname": "ip-10-0-1-5.ec2.internal",
        "hostname": "ip-10-0-1-5.ec2.internal", "public-hostname": "ec2-127-100-0-7.compute-1.amazonaws.com",
        "mac": "0e:12:34:56:78:9a", "placement/availability-zone": "us-east-1b", "placement/region": "us-east-1",
        "security-groups": "default\nweb", "reservation-id": "r-0123", "ami-launch-index": "0",
        "services/domain": "amazonaws.com",
    }
    for path, value in expected.items():
        assert served.get(f"/latest/meta-data/{path}") == (200, value.encode()), path
    # Dated versions serve the same tree; botocore asks for leaves with a trailing slash.
    assert served.get("/2021-07-15/meta-data/instance-id") == (200, b"i-0123456789abcdef0")
    assert served.get("/latest/meta-data/placement/availability-zone/") == (200, b"us-east-1b")


def test_network_interface_tree(served: Served) -> None:
    base = "/latest/meta-data/network/interfaces/macs/"
    assert served.get(base) == (200, b"0e:12:34:56:78:9a/")
    status, body = served.get(base + "0e:12:34:56:78:9a/")
    assert status == 200
    assert "subnet-id" in body.decode().split("\n") and "public-ipv4s" in body.decode().split("\n")
    mac = base + "0e:12:34:56:78:9a/"
    assert served.get(mac + "vpc-id") == (200, VPC.encode())
    assert served.get(mac + "subnet-ipv4-cidr-block") == (200, b"10.0.1.0/24")
    assert served.get(mac + "security-group-ids") == (200, b"sg-1\nsg-2")
    assert served.get(mac + "local-ipv4s") == (200, b"127.0.0.1")
    assert served.get(mac + "owner-id") == (200, b"000000000000")


def test_public_keys_are_listed_by_index_and_name(served: Served) -> None:
    assert served.get("/latest/meta-data/public-keys/") == (200, b"0=my-key")
    assert served.get("/latest/meta-data/public-keys/0/") == (200, b"openssh-key")
    assert served.get("/latest/meta-data/public-keys/0/openssh-key") == (200, b"ssh-ed25519 AAAAC3Nz test\n")


def test_without_public_ip_user_data_or_role_those_entries_are_absent(served: Served) -> None:
    listing = served.get("/latest/meta-data/", "127.0.0.4")[1].decode().split("\n")
    assert "public-ipv4" not in listing and "iam/" not in listing and "public-keys/" not in listing
    assert served.get("/latest/meta-data/public-ipv4", "127.0.0.4")[0] == 404
    assert served.get("/latest/meta-data/public-hostname", "127.0.0.4")[0] == 404
    assert served.get("/latest/user-data", "127.0.0.4")[0] == 404
    assert served.get("/latest/meta-data/iam/security-credentials/", "127.0.0.4")[0] == 404
    assert served.get("/latest/", "127.0.0.4") == (200, b"dynamic\nmeta-data")


def test_user_data_is_served_as_bytes(served: Served) -> None:
    status, headers, body = served.request("GET", "/latest/user-data")
    assert (status, body) == (200, b"#!/bin/sh\necho hi\n")
    assert headers["content-type"] == "application/octet-stream"
    assert b"user-data" in served.get("/latest/")[1]


def test_versions_and_unknown_paths(served: Served) -> None:
    status, body = served.get("/")
    assert status == 200 and body.decode().split("\n")[-1] == "latest" and "2021-07-15" in body.decode()
    status, headers, body = served.request("GET", "/latest/meta-data/no-such-thing")
    assert status == 404 and headers["content-type"] == "text/html" and b"404 - Not Found" in body
    assert served.get("/1999-01-01/meta-data/")[0] == 404
    assert served.get("/latest/meta-data/instance-id/extra")[0] == 404


def test_identity_document(served: Served) -> None:
    status, body = served.get("/latest/dynamic/instance-identity/document")
    assert status == 200
    doc = json.loads(body)
    assert doc["instanceId"] == "i-0123456789abcdef0" and doc["accountId"] == "000000000000"
    assert doc["region"] == "us-east-1" and doc["availabilityZone"] == "us-east-1b"
    assert doc["privateIp"] == "127.0.0.1" and doc["imageId"] == "ami-0fedcba987654321"
    assert doc["pendingTime"] == "2026-11-29T08:00:00Z" and doc["version"] == "2017-09-30"
    assert served.get("/latest/dynamic/instance-identity/") == (200, b"document")


def test_iam_info_and_role_credentials(served: Served) -> None:
    assert served.get("/latest/meta-data/iam/") == (200, b"info\nsecurity-credentials/")
    assert served.get("/latest/meta-data/iam/security-credentials/") == (200, b"web-role")
    info = json.loads(served.get("/latest/meta-data/iam/info")[1])
    assert info["Code"] == "Success" and info["InstanceProfileArn"].endswith("instance-profile/web")
    status, body = served.get("/latest/meta-data/iam/security-credentials/web-role")
    assert status == 200
    creds = json.loads(body)
    assert creds == {"Code": "Success", "LastUpdated": "2030-01-02T02:04:05Z", "Type": "AWS-HMAC",
                     "AccessKeyId": "ASIAEXAMPLEKEY", "SecretAccessKey": "secret/key+value",
                     "Token": "session-token", "Expiration": "2030-01-02T03:04:05Z"}
    assert served.get("/latest/meta-data/iam/security-credentials/other-role")[0] == 404
    assert served.get("/latest/meta-data/iam/security-credentials/web-role", "127.0.0.5")[0] == 404


def test_instance_tags_when_enabled(served: Served) -> None:
    assert served.get("/latest/meta-data/tags/instance/", "127.0.0.6") == (200, b"Name\nteam")
    assert served.get("/latest/meta-data/tags/instance/Name", "127.0.0.6") == (200, b"web-1")
    assert served.get("/latest/meta-data/placement/availability-zone-id", "127.0.0.6") == (200, b"use1-az2")
    assert served.get("/latest/meta-data/tags/instance/")[0] == 404


def test_token_put_and_use(served: Served) -> None:
    status, headers, body = served.request("PUT", "/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": "60"})
    assert status == 200 and headers["x-aws-ec2-metadata-token-ttl-seconds"] == "60"
    token = body.decode()
    assert served.get("/latest/meta-data/instance-id", token=token) == (200, b"i-0123456789abcdef0")
    assert served.get("/latest/meta-data/instance-id", token=token + "x")[0] == 401
    assert served.get("/latest/meta-data/instance-id", token="garbage")[0] == 401
    # A token belongs to the instance that asked for it.
    assert served.get("/latest/meta-data/instance-id", "127.0.0.4", token=token)[0] == 401


@pytest.mark.parametrize("ttl", [None, "0", "21601", "abc", "-5", ""])
def test_token_ttl_out_of_range_is_400(served: Served, ttl: str | None) -> None:
    headers = {} if ttl is None else {"X-aws-ec2-metadata-token-ttl-seconds": ttl}
    assert served.request("PUT", "/latest/api/token", headers)[0] == 400


def test_token_put_with_x_forwarded_for_is_refused(served: Served) -> None:
    headers = {"X-aws-ec2-metadata-token-ttl-seconds": "60", "X-Forwarded-For": "203.0.113.9"}
    assert served.request("PUT", "/latest/api/token", headers)[0] == 403


def test_methods(served: Served) -> None:
    assert served.request("GET", "/latest/api/token")[0] == 405
    status, headers, _ = served.request("POST", "/latest/meta-data/instance-id")
    assert status == 405 and headers["allow"] == "GET, HEAD"
    status, headers, body = served.request("HEAD", "/latest/meta-data/instance-id")
    assert status == 200 and body == b"" and headers["content-length"] == str(len("i-0123456789abcdef0"))


def test_tokens_required(served: Served) -> None:
    assert served.get("/latest/meta-data/instance-id", "127.0.0.2")[0] == 401
    token = served.token("127.0.0.2")
    assert served.get("/latest/meta-data/instance-id", "127.0.0.2", token) == (200, b"i-required")


def test_endpoint_disabled_and_unknown_source(served: Served) -> None:
    assert served.get("/latest/meta-data/", "127.0.0.3")[0] == 403
    assert served.request("PUT", "/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": "5"},
                          "127.0.0.3")[0] == 403
    assert served.get("/latest/meta-data/", "127.0.0.9")[0] == 404


def test_token_expiry_and_binding() -> None:
    signer = TokenSigner(b"k" * 32)
    token = signer.issue(VPC, "10.0.0.5", 10, now=1000.0)
    assert signer.valid(token, VPC, "10.0.0.5", now=1009.0)
    assert not signer.valid(token, VPC, "10.0.0.5", now=1010.0)
    assert not signer.valid(token, VPC, "10.0.0.6", now=1001.0)
    assert not signer.valid(token, "vpc-other", "10.0.0.5", now=1001.0)
    assert not TokenSigner(b"x" * 32).valid(token, VPC, "10.0.0.5", now=1001.0)
    assert not signer.valid("", VPC, "10.0.0.5") and not signer.valid("a.b.c", VPC, "10.0.0.5")
    assert token_ttl("21600") == 21600 and token_ttl(" 1 ") == 1 and token_ttl("21601") is None


def test_keep_alive_serves_several_requests_on_one_connection(served: Served) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=5)
    try:
        for path, value in (("/latest/meta-data/ami-id", b"ami-0fedcba987654321"),
                            ("/latest/meta-data/instance-type", b"t3.micro")):
            connection.request("GET", path)
            response = connection.getresponse()
            assert (response.status, response.read()) == (200, value)
    finally:
        connection.close()


def raw(served: Served, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_malformed_requests_get_400_and_the_connection_closes(served: Served) -> None:
    assert raw(served, b"NONSENSE\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert raw(served, b"GET / HTTP/1.1\r\nbad header line\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    huge = b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 40000 + b"\r\n\r\n"
    assert raw(served, huge).startswith(b"HTTP/1.1 400 ")
    chunked = b"PUT /latest/api/token HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    assert raw(served, chunked).startswith(b"HTTP/1.1 400 ")
    answer = raw(served, b"GET /latest/meta-data/instance-id HTTP/1.0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"\r\n\r\ni-0123456789abcdef0")


def test_botocore_fetches_role_credentials_with_imdsv2(served: Served) -> None:
    before = len(served.instances.credential_calls)
    fetcher = InstanceMetadataFetcher(timeout=5, num_attempts=1, base_url=served.base_url, env={})
    creds = fetcher.retrieve_iam_role_credentials()
    assert creds["role_name"] == "web-role" and creds["access_key"] == "ASIAEXAMPLEKEY"
    assert creds["secret_key"] == "secret/key+value" and creds["token"] == "session-token"
    assert creds["expiry_time"] == "2030-01-02T03:04:05Z"
    assert len(served.instances.credential_calls) == before + 1


def test_botocore_region_fetcher(served: Served) -> None:
    fetcher = InstanceMetadataRegionFetcher(timeout=5, num_attempts=1, base_url=served.base_url, env={})
    assert fetcher.retrieve_region() == "us-east-1"


def test_botocore_credentials_through_the_session_provider(served: Served) -> None:
    import botocore.session

    session = botocore.session.Session()
    session.set_config_variable("metadata_service_timeout", 5)
    session.set_config_variable("ec2_metadata_service_endpoint", served.base_url)
    resolver = botocore.credentials.create_credential_resolver(session)
    provider = resolver.get_provider("iam-role")
    credentials = provider.load()
    assert credentials is not None
    frozen = credentials.get_frozen_credentials()
    assert (frozen.access_key, frozen.token) == ("ASIAEXAMPLEKEY", "session-token")


def test_close_stops_serving() -> None:
    s = Served()
    assert s.get("/latest/meta-data/instance-id")[0] == 200
    s.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", s.port), timeout=2).close()


def test_times_are_rendered_in_utc() -> None:
    from minicloud.services.ec2.imds import _timestamp
    paris = timezone(timedelta(hours=1))
    assert _timestamp(datetime(2030, 1, 2, 5, 4, 5, tzinfo=paris)) == "2030-01-02T04:04:05Z"


def test_the_aws_cli_takes_its_credentials_from_the_service(served: Served, tmp_path: Path) -> None:
    aws = Path(sys.executable).parent / "aws"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
           "AWS_EC2_METADATA_SERVICE_ENDPOINT": served.base_url, "AWS_METADATA_SERVICE_TIMEOUT": "5",
           "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}
    result = subprocess.run([str(aws), "configure", "list"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    access_key = next(line for line in result.stdout.splitlines() if line.split()[:1] == ["access_key"])
    assert access_key.split()[1:] == ["****************EKEY", "iam-role"]
