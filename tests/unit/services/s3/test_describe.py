"""GET/HEAD members of an object row: worked out once per row object, the same as worked out anew."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

from minicloud.services.s3.objects import ObjectOperations, _describe
from minicloud.services.s3.store import Bucket, ObjectRow

NOW = datetime(2026, 11, 29, 17, 0, 0, tzinfo=UTC)
ROW = ObjectRow(id=1, bucket="b", key="k", version_id="null", latest=True, delete_marker=False, size=4096,
                etag='"0123"', last_modified=NOW, storage_class="ONEZONE_IA", owner="000000000000",
                digest="sha256:" + "a" * 64, parts=None, meta=json.dumps({"ContentType": "text/x"}),
                checksums=None, tags=json.dumps([["a", "b"]]), encryption=json.dumps({"sse": "AES256"}))
BUCKET = Bucket(name="b", account_id="000000000000", region="us-east-1", created_at=NOW, versioning=None,
                policy=None, tags=None, cors=None)
LIFECYCLE = json.dumps([{"ID": "r", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 1}}])


def test_describe_remembers_per_row_and_bucket_settings() -> None:
    ops = ObjectOperations.__new__(ObjectOperations)
    first = ops.describe(ROW, BUCKET)
    assert first == _describe(ROW, BUCKET) and first["TagCount"] == 1 and "VersionId" not in first
    first["ContentLength"] = 1  # the caller's own dict: the next answer is not changed by it
    assert ops.describe(ROW, BUCKET) == _describe(ROW, BUCKET)
    versioned = replace(BUCKET, versioning="Enabled")
    assert ops.describe(ROW, versioned)["VersionId"] == "null"
    expiring = replace(BUCKET, lifecycle=LIFECYCLE)
    assert ops.describe(ROW, expiring) == _describe(ROW, expiring) and "Expiration" in ops.describe(ROW, expiring)
    other = replace(ROW, etag='"4567"', tags=None)  # another row object (a newer version, say)
    assert ops.describe(other, BUCKET) == _describe(other, BUCKET) and "TagCount" not in ops.describe(other, BUCKET)
    assert ops.describe(ROW, BUCKET)["ETag"] == '"0123"'
