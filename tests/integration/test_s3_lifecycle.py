"""S3 lifecycle rules through boto3 against a real ``minicloud up`` whose lifecycle "day" is one
second (MINICLOUD_LIFECYCLE_DAY_SECONDS, the test-only acceleration): the configuration is
validated as S3 does, and the controller expires objects, versions, delete markers and uploads
(storage-class transitions: ``test_s3_archive.py``)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.aws import code
from tests.support.polling import eventually
from tests.support.server import MinicloudServer


@pytest.fixture(scope="module")
def fast_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MinicloudServer]:
    srv = MinicloudServer(Path(tmp_path_factory.mktemp("lifecycle")), env={"MINICLOUD_LIFECYCLE_DAY_SECONDS": "1"})
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def s3(fast_server: MinicloudServer) -> Any:
    return fast_server.client("s3")


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"life-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name




def keys(s3: Any, bucket: str) -> set[str]:
    return {o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}


def versions(s3: Any, bucket: str) -> list[tuple[str, bool]]:
    listed = s3.list_object_versions(Bucket=bucket)
    return ([(v["Key"], False) for v in listed.get("Versions", [])]
            + [(m["Key"], True) for m in listed.get("DeleteMarkers", [])])


@pytest.mark.parametrize(("rule", "error"), [
    ({"Status": "Enabled", "Filter": {"Prefix": ""}}, "InvalidRequest"),
    ({"Status": "Maybe", "Filter": {"Prefix": ""}, "Expiration": {"Days": 1}}, "MalformedXML"),
    ({"Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 0}}, "InvalidArgument"),
    ({"Status": "Enabled", "Filter": {"Prefix": ""},
      "Expiration": {"Date": datetime(2030, 1, 1, 12, tzinfo=UTC)}}, "InvalidArgument"),
    ({"Status": "Enabled", "Filter": {"Tag": {"Key": "a", "Value": "b"}},
      "Expiration": {"ExpiredObjectDeleteMarker": True}}, "InvalidRequest"),
    ({"Status": "Enabled", "Filter": {"Tag": {"Key": "a", "Value": "b"}},
      "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}, "InvalidRequest"),
    # Transitions, each on its own, then between the actions of their rule.
    ({"Status": "Enabled", "Filter": {"Prefix": ""},
      "Transitions": [{"Date": datetime(2030, 1, 1, 12, tzinfo=UTC), "StorageClass": "GLACIER"}]}, "InvalidArgument"),
    ({"Status": "Enabled", "Filter": {"Prefix": ""},
      "Transitions": [{"Days": 30, "Date": datetime(2030, 1, 1, tzinfo=UTC), "StorageClass": "GLACIER"}]},
     "MalformedXML"),
    ({"Status": "Enabled", "Filter": {"Prefix": ""}, "Transitions": [{"Days": 30, "StorageClass": "COLD"}]},
     "MalformedXML"),
    ({"Status": "Enabled", "Filter": {"Prefix": ""}, "Transitions": [{"Days": -1, "StorageClass": "GLACIER"}]},
     "InvalidArgument"),
    ({"Status": "Enabled", "Filter": {"Prefix": ""}, "Transitions": [{"Days": 1, "StorageClass": "STANDARD_IA"}]},
     "InvalidArgument"),
    ({"Status": "Enabled", "Filter": {"Prefix": ""},
      "NoncurrentVersionTransitions": [{"StorageClass": "GLACIER"}]}, "MalformedXML"),
    ({"Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 30},
      "Transitions": [{"Days": 30, "StorageClass": "GLACIER"}]}, "InvalidArgument"),
    ({"Status": "Enabled", "Filter": {"Prefix": ""}, "Transitions": [
        {"Days": 30, "StorageClass": "STANDARD_IA"}, {"Days": 40, "StorageClass": "GLACIER"}]}, "InvalidArgument"),
    ({"Status": "Enabled", "Filter": {"Prefix": ""}, "Transitions": [
        {"Days": 90, "StorageClass": "GLACIER"}, {"Days": 120, "StorageClass": "STANDARD_IA"}]}, "InvalidArgument"),
    ({"Status": "Enabled", "Filter": {"Prefix": ""}, "Transitions": [
        {"Days": 30, "StorageClass": "GLACIER"}, {"Days": 300, "StorageClass": "GLACIER"}]}, "InvalidRequest"),
    ({"Status": "Enabled", "Filter": {"Prefix": ""}, "Transitions": [
        {"Days": 30, "StorageClass": "GLACIER"},
        {"Date": datetime(2030, 1, 1, tzinfo=UTC), "StorageClass": "DEEP_ARCHIVE"}]}, "InvalidRequest"),
    ({"Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Date": datetime(2031, 1, 1, tzinfo=UTC)},
      "Transitions": [{"Days": 30, "StorageClass": "GLACIER"}]}, "InvalidRequest"),
    ({"Status": "Enabled", "Filter": {"Prefix": ""}, "NoncurrentVersionExpiration": {"NoncurrentDays": 10},
      "NoncurrentVersionTransitions": [{"NoncurrentDays": 10, "StorageClass": "GLACIER"}]}, "InvalidArgument"),
])
def test_invalid_rules(s3: Any, bucket: str, rule: dict[str, Any], error: str) -> None:
    with pytest.raises(ClientError) as err:
        s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [rule]})
    assert code(err) == error


def test_transition_rules_round_trip(s3: Any, bucket: str) -> None:
    """Rules with transitions are stored and answered as S3 does: Date a timestamp, Days an integer,
    the configuration's TransitionDefaultMinimumObjectSize (S3's default when none was named)."""
    date = datetime(2031, 1, 1, tzinfo=UTC)
    rules = [
        {"ID": "waterfall", "Status": "Enabled", "Filter": {"Prefix": "logs/"}, "Expiration": {"Days": 400},
         "Transitions": [{"Days": 30, "StorageClass": "STANDARD_IA"}, {"Days": 60, "StorageClass": "GLACIER_IR"},
                         {"Days": 150, "StorageClass": "GLACIER"}, {"Days": 240, "StorageClass": "DEEP_ARCHIVE"}],
         "NoncurrentVersionTransitions": [{"NoncurrentDays": 30, "StorageClass": "ONEZONE_IA",
                                           "NewerNoncurrentVersions": 2}],
         "NoncurrentVersionExpiration": {"NoncurrentDays": 90}},
        {"ID": "dated", "Status": "Disabled", "Filter": {"Tag": {"Key": "archive", "Value": "yes"}},
         "Transitions": [{"Date": date, "StorageClass": "GLACIER"}]}]
    answer = s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
    assert answer["TransitionDefaultMinimumObjectSize"] == "all_storage_classes_128K"
    got = s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    assert got["TransitionDefaultMinimumObjectSize"] == "all_storage_classes_128K"
    assert got["Rules"][0]["Transitions"] == rules[0]["Transitions"]
    assert got["Rules"][0]["NoncurrentVersionTransitions"] == rules[0]["NoncurrentVersionTransitions"]
    assert got["Rules"][1]["Transitions"] == [{"Date": date, "StorageClass": "GLACIER"}]
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules[1:]},
                                          TransitionDefaultMinimumObjectSize="varies_by_storage_class")
    got = s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    assert got["TransitionDefaultMinimumObjectSize"] == "varies_by_storage_class" and len(got["Rules"]) == 1
    with pytest.raises(ClientError) as err:
        s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules},
                                              TransitionDefaultMinimumObjectSize="all_sizes")
    assert code(err) == "InvalidArgument"


def test_every_rule_is_validated_before_any_is_stored(s3: Any, bucket: str) -> None:
    transition = {"ID": "t", "Status": "Enabled", "Filter": {"Prefix": ""},
                  "Transitions": [{"Days": 30, "StorageClass": "GLACIER"}]}
    bogus = {"ID": "b", "Status": "Bogus", "Filter": {"Prefix": ""}, "Expiration": {"Days": 1}}
    for rules in ([transition, bogus], [bogus, transition]):
        with pytest.raises(ClientError) as err:
            s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
        assert code(err) == "MalformedXML"
    with pytest.raises(ClientError) as err:
        s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    assert code(err) == "NoSuchLifecycleConfiguration"


def test_configuration_round_trip(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as err:
        s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    assert code(err) == "NoSuchLifecycleConfiguration"
    date = datetime(2099, 1, 1, tzinfo=UTC)
    rules = [{"ID": "old", "Status": "Enabled", "Filter": {"Prefix": "logs/"}, "Expiration": {"Date": date}},
             {"ID": "dup", "Status": "Disabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 3}}]
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
    got = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert got[0]["ID"] == "old" and got[0]["Expiration"]["Date"] == date and got[1]["Status"] == "Disabled"
    with pytest.raises(ClientError) as err:
        s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [rules[1], rules[1]]})
    assert code(err) == "InvalidArgument"
    s3.delete_bucket_lifecycle(Bucket=bucket)
    with pytest.raises(ClientError):
        s3.get_bucket_lifecycle_configuration(Bucket=bucket)


def test_expiration_on_an_unversioned_bucket(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="tmp/a", Body=b"a")
    s3.put_object(Bucket=bucket, Key="tmp/tagged", Body=b"t", Tagging="expire=yes")
    s3.put_object(Bucket=bucket, Key="keep/b", Body=b"b")
    s3.put_object(Bucket=bucket, Key="other/tagged", Body=b"t", Tagging="expire=yes")
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        {"ID": "tmp", "Status": "Enabled", "Filter": {"Prefix": "tmp/"}, "Expiration": {"Days": 5}},
        {"ID": "tags", "Status": "Enabled", "Filter": {"And": {"Prefix": "other/", "Tags": [
            {"Key": "expire", "Value": "yes"}]}}, "Expiration": {"Days": 1}}]})
    assert "tmp/a" in keys(s3, bucket)  # not five "days" (seconds) old yet, even on a busy machine
    eventually(lambda: keys(s3, bucket) == {"keep/b"})
    assert versions(s3, bucket) == [("keep/b", False)]  # deleted for good, no markers


def test_versions_markers_and_uploads(s3: Any, bucket: str) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=bucket, Key="v/k", Body=b"1")
    s3.put_object(Bucket=bucket, Key="v/k", Body=b"2")
    upload = s3.create_multipart_upload(Bucket=bucket, Key="v/big")["UploadId"]
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        {"ID": "current", "Status": "Enabled", "Filter": {"Prefix": "v/"}, "Expiration": {"Days": 1}},
        {"ID": "cleanup", "Status": "Enabled", "Filter": {"Prefix": ""},
         "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}},
        {"ID": "markers", "Status": "Enabled", "Filter": {"Prefix": ""},
         "Expiration": {"ExpiredObjectDeleteMarker": True}}]})
    eventually(lambda: not s3.list_multipart_uploads(Bucket=bucket).get("Uploads"))
    with pytest.raises(ClientError) as err:
        s3.list_parts(Bucket=bucket, Key="v/big", UploadId=upload)
    assert code(err) == "NoSuchUpload"
    # the current version gets a delete marker, the versions behind it expire, then the lone marker
    eventually(lambda: versions(s3, bucket) == [])


def test_locked_versions_are_kept(s3: Any) -> None:
    name = f"life-lock-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    until = datetime.now(UTC) + timedelta(days=1)
    s3.put_object(Bucket=name, Key="k", Body=b"1", ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=until)
    s3.put_object(Bucket=name, Key="k", Body=b"2")
    s3.put_object(Bucket=name, Key="j", Body=b"1")
    s3.put_object(Bucket=name, Key="j", Body=b"2")
    s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": [
        {"ID": "noncurrent", "Status": "Enabled", "Filter": {"Prefix": ""},
         "NoncurrentVersionExpiration": {"NoncurrentDays": 1}}]})
    eventually(lambda: sorted(versions(s3, name)) == [("j", False), ("k", False), ("k", False)])
    time.sleep(2)  # more "days" pass: the locked version stays
    assert sorted(versions(s3, name)) == [("j", False), ("k", False), ("k", False)]
