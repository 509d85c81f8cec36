"""Small pure pieces of the console: safe redirects, S3 breadcrumbs, image manifests, sizes."""

from __future__ import annotations

import json

from minicloud.console.app import _safe_next
from minicloud.console.http import url
from minicloud.console.templates import human_size
from minicloud.console.views.ecr import manifest_parts
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
