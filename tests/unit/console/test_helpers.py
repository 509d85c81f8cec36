"""Small pure pieces of the console: safe redirects, S3 breadcrumbs, image manifests, sizes."""

from __future__ import annotations

import io
import json
import zipfile

from minicloud.console.app import _safe_next
from minicloud.console.http import url
from minicloud.console.templates import human_size
from minicloud.console.topology import draw_vpc
from minicloud.console.views.ecr import manifest_parts
from minicloud.console.views.lambda_ import decode_log, editable_files, own_address, replace_file, zip_one
from minicloud.console.views.s3_objects import breadcrumbs


def test_only_console_pages_are_redirect_targets() -> None:
    assert _safe_next("/_minicloud/console/s3/buckets?prefix=a")
    assert not _safe_next("https://evil.example/")
    assert not _safe_next("//evil.example/_minicloud/console/")
    assert not _safe_next("/_minicloud/console//evil.example")
    assert not _safe_next("/_minicloud/console/\\evil")
    assert not _safe_next("/_minicloud/console/x\r\nSet-Cookie: a=b")
    assert not _safe_next("/other")


def test_urls_quote_query_values() -> None:
    assert url("/s3/buckets/b", prefix="a b/&c", token=None) == "/_minicloud/console/s3/buckets/b?prefix=a%20b%2F%26c"


def test_breadcrumbs_follow_prefixes() -> None:
    assert breadcrumbs("") == []
    assert breadcrumbs("a/b/") == [("a", "a/"), ("b", "a/b/")]
    assert breadcrumbs("a/b/file.txt") == [("a", "a/"), ("b", "a/b/")]


def test_manifest_parts_list_config_layers_and_index_entries() -> None:
    manifest = {"config": {"digest": "sha256:c", "size": 10, "mediaType": "cfg"},
                "layers": [{"digest": "sha256:l1", "size": 100, "mediaType": "tar"}]}
    parts = manifest_parts(json.dumps(manifest))
    assert [(p.kind, p.digest, p.size) for p in parts] == [("config", "sha256:c", 10), ("layer", "sha256:l1", 100)]
    index = {"manifests": [{"digest": "sha256:m", "size": 5, "mediaType": "m",
                            "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}}]}
    assert manifest_parts(json.dumps(index))[0].platform == "linux/arm64/v8"
    assert manifest_parts("not json") == []


def test_human_sizes() -> None:
    assert human_size(0) == "0 B"
    assert human_size(1023) == "1023 B"
    assert human_size(1536) == "1.5 KiB"
    assert human_size(3 * 1024 ** 3) == "3.0 GiB"
    assert human_size(None) == "—"


def test_vpc_drawing_puts_subnets_in_their_zones_and_instances_in_their_subnets() -> None:
    vpc = {"VpcId": "vpc-1", "CidrBlock": "10.0.0.0/16"}
    subnets = [{"SubnetId": "subnet-b", "CidrBlock": "10.0.2.0/24", "AvailabilityZone": "us-east-1b"},
               {"SubnetId": "subnet-a", "CidrBlock": "10.0.1.0/24", "AvailabilityZone": "us-east-1a"},
               {"SubnetId": "subnet-x", "CidrBlock": "10.0.3.0/24", "AvailabilityZone": "elsewhere-1z"}]
    instances = [{"InstanceId": "i-1", "SubnetId": "subnet-a", "State": {"Name": "running"},
                  "PrivateIpAddress": "10.0.1.4", "PublicIpAddress": "127.100.0.9"},
                 {"InstanceId": "i-2", "SubnetId": "subnet-a", "State": {"Name": "pending"}}]
    drawing = draw_vpc(vpc, ["us-east-1a", "us-east-1b", "us-east-1c"], subnets, instances)
    assert [z.title for z in drawing.zones] == ["us-east-1a", "us-east-1b", "us-east-1c", "elsewhere-1z"]
    zone_a = drawing.zones[0]
    assert [s.title for s in zone_a.children] == ["subnet-a"]
    assert [(i.title, i.state, i.subtitle) for i in zone_a.children[0].children] == [
        ("i-1", "running", "10.0.1.4 · 127.100.0.9"), ("i-2", "pending", "")]
    subnet_a = zone_a.children[0]
    for outer, inner in [(zone_a, subnet_a), *((subnet_a, i) for i in subnet_a.children)]:  # inside its parent
        assert outer.x <= inner.x and inner.x + inner.width <= outer.x + outer.width
        assert outer.y <= inner.y and inner.y + inner.height <= outer.y + outer.height
    assert all(z.y + z.height <= drawing.height for z in drawing.zones)
    assert drawing.width >= 4 * 300


def test_lambda_packages_are_edited_one_file_at_a_time() -> None:
    buffer = io.BytesIO(zip_one("app.py", "print(1)\n"))
    with zipfile.ZipFile(buffer, "a") as archive:
        archive.writestr("lib/data.bin", bytes(range(256)))
    package = buffer.getvalue()
    assert editable_files(package) == {"app.py": "print(1)\n"}  # binary members are not offered
    edited = replace_file(package, "app.py", "print(2)\n")
    with zipfile.ZipFile(io.BytesIO(edited)) as archive:
        assert archive.read("app.py") == b"print(2)\n"
        assert archive.read("lib/data.bin") == bytes(range(256))  # the rest kept as it was
    assert editable_files(b"not a zip") == {}
    assert decode_log("U1RBUlQK") == "START\n"
    assert decode_log("not base64!") == "not base64!"


def test_lambda_code_is_fetched_from_this_server_whatever_the_host_header_said() -> None:
    location = "http://evil.example:80/_minicloud/lambda/code/1/abc?Expires=1&Signature=f"
    assert own_address(location, "127.0.0.1", 4566) == "http://127.0.0.1:4566/_minicloud/lambda/code/1/abc?Expires=1&Signature=f"
    assert own_address(location, "0.0.0.0", 4566).startswith("http://127.0.0.1:4566/")
    assert own_address(location, "::1", 4566).startswith("http://[::1]:4566/")
