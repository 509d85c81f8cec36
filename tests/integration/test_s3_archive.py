"""Storage-class transitions and archived objects through boto3 and the AWS CLI against a real
``minicloud up`` whose lifecycle "day" is a fifth of a second (MINICLOUD_LIFECYCLE_DAY_SECONDS),
whose restores take two seconds (MINICLOUD_S3_RESTORE_SECONDS) and whose scrubber runs every
second: the lifecycle controller moves versions down S3's waterfall, GLACIER and DEEP_ARCHIVE
versions are read only while a restored copy lasts, and no copy of their data is lost."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.aws import code, status
from tests.support.polling import eventually
from tests.support.server import Keys, MinicloudServer

DAY = 0.2  # seconds: the server's lifecycle "day"
ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
BIG = 300_000  # above S3's 128 KB transition minimum, and above the small-blob pack's limit (a file per copy)


@pytest.fixture(scope="module")
def archive_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MinicloudServer]:
    srv = MinicloudServer(Path(tmp_path_factory.mktemp("archive")), env={
        "MINICLOUD_LIFECYCLE_DAY_SECONDS": str(DAY), "MINICLOUD_S3_RESTORE_SECONDS": "2",
        "MINICLOUD_S3_SCRUB_SECONDS": "1", "MINICLOUD_ENGINE": "false"})
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def s3(archive_server: MinicloudServer) -> Any:
    return archive_server.client("s3")


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"archive-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name




def storage_class(s3: Any, bucket: str, key: str, **kw: Any) -> str:
    return str(s3.head_object(Bucket=bucket, Key=key, **kw).get("StorageClass", "STANDARD"))


def refused(call: Callable[[], Any]) -> ClientError:
    with pytest.raises(ClientError) as err:
        call()
    return err.value


def readable(s3: Any, bucket: str, key: str) -> bool:
    try:
        s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as err:
        assert err.response["Error"]["Code"] == "InvalidObjectState"
        return False
    return True


def expiry_of(restore: str) -> datetime:
    match = re.fullmatch(r'ongoing-request="false", expiry-date="([^"]+)"', restore)
    assert match, restore
    return parsedate_to_datetime(match.group(1))


def test_transition_to_glacier_then_restore_and_expiry(s3: Any, bucket: str) -> None:
    body = os.urandom(BIG)
    s3.put_object(Bucket=bucket, Key="logs/big", Body=body)
    s3.put_object(Bucket=bucket, Key="logs/small", Body=b"under 128 KB")
    s3.put_object(Bucket=bucket, Key="keep/big", Body=body)
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        {"ID": "archive", "Status": "Enabled", "Filter": {"Prefix": "logs/"},
         "Transitions": [{"Days": 25, "StorageClass": "GLACIER"}]}]})
    assert storage_class(s3, bucket, "logs/big") == "STANDARD"  # not 25 "days" (5 s) old yet
    eventually(lambda: storage_class(s3, bucket, "logs/big") == "GLACIER", "the transition")
    assert storage_class(s3, bucket, "logs/small") == "STANDARD"  # (the same pass left it: under 128 KB)
    assert storage_class(s3, bucket, "keep/big") == "STANDARD"

    err = refused(lambda: s3.get_object(Bucket=bucket, Key="logs/big"))
    assert err.response["Error"] == {"Code": "InvalidObjectState", "StorageClass": "GLACIER",
                                     "Message": "The operation is not valid for the object's storage class"}
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    head = s3.head_object(Bucket=bucket, Key="logs/big")
    assert head["ContentLength"] == BIG and "Restore" not in head
    err = refused(lambda: s3.copy_object(Bucket=bucket, Key="copy", CopySource=f"{bucket}/logs/big"))
    assert err.response["Error"]["Code"] == "InvalidObjectState"

    answer = s3.restore_object(Bucket=bucket, Key="logs/big",
                               RestoreRequest={"Days": 50, "GlacierJobParameters": {"Tier": "Standard"}})
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 202
    err = refused(lambda: s3.restore_object(Bucket=bucket, Key="logs/big", RestoreRequest={"Days": 50}))
    assert err.response["Error"]["Code"] == "RestoreAlreadyInProgress"
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    assert s3.head_object(Bucket=bucket, Key="logs/big")["Restore"] == 'ongoing-request="true"'

    eventually(lambda: readable(s3, bucket, "logs/big"), "the restore")
    got = s3.get_object(Bucket=bucket, Key="logs/big")
    assert got["Body"].read() == body and got["StorageClass"] == "GLACIER"
    first = expiry_of(got["Restore"])
    assert first > datetime.now(UTC)
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="logs/big", OptionalObjectAttributes=["RestoreStatus"])
    assert listed["Contents"][0]["RestoreStatus"] == {"IsRestoreInProgress": False, "RestoreExpiryDate": first}
    s3.copy_object(Bucket=bucket, Key="thawed", CopySource=f"{bucket}/logs/big", StorageClass="STANDARD")
    assert s3.get_object(Bucket=bucket, Key="thawed")["Body"].read() == body
    s3.copy_object(Bucket=bucket, Key="plain", CopySource=f"{bucket}/logs/big")  # S3: no class asked is STANDARD
    assert "StorageClass" not in s3.head_object(Bucket=bucket, Key="plain")
    assert s3.get_object(Bucket=bucket, Key="plain")["Body"].read() == body
    err = refused(lambda: s3.restore_object(Bucket=bucket, Key="logs/big", RestoreRequest={"Days": 3_000_000}))
    assert (err.response["Error"]["Code"], err.response["ResponseMetadata"]["HTTPStatusCode"]) == (
        "InvalidArgument", 400)  # (no date can hold it: it used to be accepted, then stalled every restore)
    err = refused(lambda: s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        {"ID": "far", "Status": "Enabled", "Filter": {},
         "Transitions": [{"Days": 3_000_000, "StorageClass": "GLACIER"}]}]}))
    assert err.response["Error"]["Code"] == "InvalidArgument"

    answer = s3.restore_object(Bucket=bucket, Key="logs/big", RestoreRequest={"Days": 50})
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200  # restored already: its expiry counted from now
    extended = expiry_of(s3.head_object(Bucket=bucket, Key="logs/big")["Restore"])
    assert extended > first

    eventually(lambda: not readable(s3, bucket, "logs/big"), "the restored copy's expiry")
    eventually(lambda: "Restore" not in s3.head_object(Bucket=bucket, Key="logs/big"), "the copy forgotten")
    assert s3.get_object(Bucket=bucket, Key="thawed")["Body"].read() == body  # the permanent copy stays


def test_archived_by_put_and_restore_errors(s3: Any, bucket: str) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket=bucket, Key="cold", Body=b"old", StorageClass="GLACIER")["VersionId"]
    s3.put_object(Bucket=bucket, Key="cold", Body=b"new", StorageClass="DEEP_ARCHIVE")
    s3.put_object(Bucket=bucket, Key="instant", Body=b"ir", StorageClass="GLACIER_IR")
    s3.put_object(Bucket=bucket, Key="warm", Body=b"std")
    s3.put_object(Bucket=bucket, Key="tiered", Body=b"it", StorageClass="INTELLIGENT_TIERING")
    assert s3.get_object(Bucket=bucket, Key="instant")["Body"].read() == b"ir"  # GLACIER_IR: instant
    err = refused(lambda: s3.get_object(Bucket=bucket, Key="cold"))
    assert (code_of(err), err.response["Error"]["StorageClass"]) == ("InvalidObjectState", "DEEP_ARCHIVE")
    err = refused(lambda: s3.get_object(Bucket=bucket, Key="cold", VersionId=first, Range="bytes=0-1"))
    assert (code_of(err), err.response["Error"]["StorageClass"]) == ("InvalidObjectState", "GLACIER")
    upload = s3.create_multipart_upload(Bucket=bucket, Key="parts")["UploadId"]
    err = refused(lambda: s3.upload_part_copy(Bucket=bucket, Key="parts", UploadId=upload, PartNumber=1,
                                              CopySource={"Bucket": bucket, "Key": "cold"}))
    assert code_of(err) == "InvalidObjectState"
    s3.abort_multipart_upload(Bucket=bucket, Key="parts", UploadId=upload)

    for key, request, expected in [
            ("warm", {"Days": 1}, "InvalidObjectState"),
            ("instant", {"Days": 1}, "InvalidObjectState"),
            ("tiered", {}, "ObjectAlreadyInActiveTierError"),
            ("tiered", {"Days": 1}, "InvalidArgument"),
            ("cold", {}, "MalformedXML"),
            ("cold", {"Days": 0}, "InvalidArgument"),
            ("cold", {"Days": 1, "Tier": "Bulk"}, "MalformedXML"),
            ("cold", {"Days": 1, "GlacierJobParameters": {"Tier": "Expedited"}}, "InvalidArgument")]:
        err = refused(lambda k=key, r=request: s3.restore_object(Bucket=bucket, Key=k, RestoreRequest=r))
        assert code_of(err) == expected, (key, request)
    err = refused(lambda: s3.restore_object(Bucket=bucket, Key="nothing", RestoreRequest={"Days": 1}))
    assert code_of(err) == "NoSuchKey"

    answer = s3.restore_object(Bucket=bucket, Key="cold", VersionId=first,
                               RestoreRequest={"Days": 100, "GlacierJobParameters": {"Tier": "Expedited"}})
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 202
    eventually(lambda: readable_version(s3, bucket, "cold", first), "the restore of the old version")
    assert s3.get_object(Bucket=bucket, Key="cold", VersionId=first)["Body"].read() == b"old"
    assert "Restore" not in s3.head_object(Bucket=bucket, Key="cold")  # the current version: not restored
    assert refused(lambda: s3.get_object(Bucket=bucket, Key="cold")).response["Error"]["Code"] == "InvalidObjectState"


def code_of(err: ClientError) -> str:
    return str(err.response["Error"]["Code"])


def readable_version(s3: Any, bucket: str, key: str, version_id: str) -> bool:
    try:
        s3.get_object(Bucket=bucket, Key=key, VersionId=version_id, Range="bytes=0-0")["Body"].read()
    except ClientError as err:
        assert code_of(err) == "InvalidObjectState"
        return False
    return True


def test_noncurrent_versions_transition_keeping_the_newest(s3: Any, bucket: str) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    ids = [s3.put_object(Bucket=bucket, Key="doc", Body=os.urandom(BIG))["VersionId"] for _ in range(3)]
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        {"ID": "older", "Status": "Enabled", "Filter": {"Prefix": ""}, "NoncurrentVersionTransitions": [
            {"NoncurrentDays": 1, "StorageClass": "GLACIER", "NewerNoncurrentVersions": 1}]}]})

    def classes() -> dict[str, str]:
        listed = s3.list_object_versions(Bucket=bucket)["Versions"]
        return {v["VersionId"]: v["StorageClass"] for v in listed}
    eventually(lambda: classes()[ids[0]] == "GLACIER", "the oldest version's transition")
    assert classes() == {ids[0]: "GLACIER", ids[1]: "STANDARD", ids[2]: "STANDARD"}  # (the same pass kept these)


def test_small_objects_and_the_minimum_size_setting(s3: Any, bucket: str) -> None:
    for key in ("glacier/small", "glacier/big", "instant/small", "instant/big", "sized/small"):
        s3.put_object(Bucket=bucket, Key=key, Body=os.urandom(BIG if key.endswith("big") else 1000))
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket, TransitionDefaultMinimumObjectSize="varies_by_storage_class",
        LifecycleConfiguration={"Rules": [
            {"ID": "g", "Status": "Enabled", "Filter": {"Prefix": "glacier/"},
             "Transitions": [{"Days": 1, "StorageClass": "GLACIER"}]},
            {"ID": "ir", "Status": "Enabled", "Filter": {"Prefix": "instant/"},
             "Transitions": [{"Days": 1, "StorageClass": "GLACIER_IR"}]},
            {"ID": "sized", "Status": "Enabled", "Filter": {"And": {"Prefix": "sized/", "ObjectSizeGreaterThan": 10}},
             "Transitions": [{"Days": 1, "StorageClass": "GLACIER_IR"}]}]})
    eventually(lambda: storage_class(s3, bucket, "instant/big") == "GLACIER_IR", "the transition of a big object")
    eventually(lambda: storage_class(s3, bucket, "glacier/big") == "GLACIER", "the transition of a big object")
    assert storage_class(s3, bucket, "glacier/small") == "GLACIER"  # varies_by_storage_class: small ones archive
    assert storage_class(s3, bucket, "sized/small") == "GLACIER_IR"  # a size filter decides alone
    assert storage_class(s3, bucket, "instant/small") == "STANDARD"  # but not to GLACIER_IR by default


def scrub_runs(server: MinicloudServer) -> int:
    with urllib.request.urlopen(f"{server.endpoint}/_minicloud/health", timeout=5) as response:
        return int(json.loads(response.read())["controllers"]["s3-scrub"]["runs"])


def copies(server: MinicloudServer, bucket: str, key: str) -> set[str]:
    """The zones holding a file of the object's (single) blob."""
    with sqlite3.connect(server.data_dir / "metadata.sqlite3") as conn:
        (digest,) = conn.execute("SELECT digest FROM s3_objects WHERE bucket = ? AND key = ? AND latest",
                                 (bucket, key)).fetchone()
    name = str(digest).split(":", 1)[1]
    return {zone for zone in ZONES if (server.data_dir / "s3" / zone / "sha256" / name[:2] / name).exists()}


def test_copies_of_data_follow_transitions(archive_server: MinicloudServer, s3: Any, bucket: str) -> None:
    """STANDARD to ONEZONE_IA keeps every zone's copy (more durable than asked, never less), and the
    scrubber leaves them; ONEZONE_IA to GLACIER puts the one copy on every zone."""
    wide, narrow = os.urandom(BIG), os.urandom(BIG)
    s3.put_object(Bucket=bucket, Key="wide", Body=wide)
    s3.put_object(Bucket=bucket, Key="narrow", Body=narrow, StorageClass="ONEZONE_IA")
    assert copies(archive_server, bucket, "wide") == set(ZONES)
    assert len(copies(archive_server, bucket, "narrow")) == 1
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        {"ID": "ia", "Status": "Enabled", "Filter": {"Prefix": "wide"},
         "Transitions": [{"Days": 30, "StorageClass": "ONEZONE_IA"}]},
        {"ID": "cold", "Status": "Enabled", "Filter": {"Prefix": "narrow"},
         "Transitions": [{"Days": 1, "StorageClass": "GLACIER"}]}]})
    eventually(lambda: storage_class(s3, bucket, "narrow") == "GLACIER", "the transition to GLACIER")
    eventually(lambda: copies(archive_server, bucket, "narrow") == set(ZONES), "the copies of a GLACIER object")
    eventually(lambda: storage_class(s3, bucket, "wide") == "ONEZONE_IA", "the transition to ONEZONE_IA")
    runs = scrub_runs(archive_server)
    eventually(lambda: scrub_runs(archive_server) >= runs + 2, "two scrub passes")
    assert copies(archive_server, bucket, "wide") == set(ZONES)
    assert s3.get_object(Bucket=bucket, Key="wide")["Body"].read() == wide


def test_aws_cli_transition_rule_and_restore(archive_server: MinicloudServer, bucket: str, tmp_path: Path) -> None:
    rules = {"Rules": [{"ID": "to-glacier", "Status": "Enabled", "Filter": {"Prefix": "backups/"},
                        "Transitions": [{"Days": 90, "StorageClass": "GLACIER"}],
                        "Expiration": {"Days": 365}}]}
    config = tmp_path / "lifecycle.json"
    config.write_text(json.dumps(rules))
    archive_server.aws("s3api", "put-bucket-lifecycle-configuration", "--bucket", bucket,
                       "--lifecycle-configuration", f"file://{config}")
    got = archive_server.aws_json("s3api", "get-bucket-lifecycle-configuration", "--bucket", bucket)
    assert got["Rules"][0]["Transitions"] == [{"Days": 90, "StorageClass": "GLACIER"}]
    assert got["TransitionDefaultMinimumObjectSize"] == "all_storage_classes_128K"

    body = tmp_path / "body"
    body.write_bytes(os.urandom(2000))
    archive_server.aws("s3api", "put-object", "--bucket", bucket, "--key", "frozen", "--body", str(body),
                       "--storage-class", "DEEP_ARCHIVE")
    out = tmp_path / "out"
    failed = archive_server.aws("s3api", "get-object", "--bucket", bucket, "--key", "frozen", str(out), check=False)
    assert failed.returncode != 0 and "InvalidObjectState" in failed.stderr
    archive_server.aws("s3api", "restore-object", "--bucket", bucket, "--key", "frozen",
                       "--restore-request", "Days=100,GlacierJobParameters={Tier=Bulk}")
    again = archive_server.aws("s3api", "restore-object", "--bucket", bucket, "--key", "frozen",
                               "--restore-request", "Days=100", check=False)
    assert again.returncode != 0 and "RestoreAlreadyInProgress" in again.stderr
    head = archive_server.aws_json("s3api", "head-object", "--bucket", bucket, "--key", "frozen")
    assert head["StorageClass"] == "DEEP_ARCHIVE" and head["Restore"] == 'ongoing-request="true"'
    eventually(lambda: archive_server.aws("s3api", "get-object", "--bucket", bucket, "--key", "frozen", str(out),
                                          check=False).returncode == 0, "the restore")
    assert out.read_bytes() == body.read_bytes()
    head = archive_server.aws_json("s3api", "head-object", "--bucket", bucket, "--key", "frozen")
    assert expiry_of(head["Restore"]) > datetime.now(UTC)


def test_restore_needs_its_permission(archive_server: MinicloudServer, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="cold", Body=b"x", StorageClass="GLACIER")
    iam = archive_server.client("iam")
    user = f"reader-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="read", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"],
                                                "Resource": f"arn:aws:s3:::{bucket}/*"}]}))
    keys = iam.create_access_key(UserName=user)["AccessKey"]
    reader = archive_server.client("s3", Keys(keys["AccessKeyId"], keys["SecretAccessKey"]))
    with pytest.raises(ClientError) as err:
        reader.restore_object(Bucket=bucket, Key="cold", RestoreRequest={"Days": 1})
    assert (code(err), status(err)) == ("AccessDenied", 403)
    iam.put_user_policy(UserName=user, PolicyName="restore", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:RestoreObject"],
                                                "Resource": f"arn:aws:s3:::{bucket}/*"}]}))
    eventually(lambda: _restores(reader, bucket), "the new policy")


def _restores(client: Any, bucket: str) -> bool:
    try:
        return int(client.restore_object(Bucket=bucket, Key="cold", RestoreRequest={"Days": 1})
                   ["ResponseMetadata"]["HTTPStatusCode"]) == 202
    except ClientError as err:
        assert err.response["Error"]["Code"] == "AccessDenied"
        return False
