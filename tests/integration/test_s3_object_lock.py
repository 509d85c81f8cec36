"""S3 Object Lock through boto3 against a real ``minicloud up``: lock-enabled buckets, default
retention, GOVERNANCE and COMPLIANCE retention, legal holds, refused deletes, the governance
bypass (header + s3:BypassGovernanceRetention), the permissions a write's lock headers need
(s3:PutObjectRetention, s3:PutObjectLegalHold) and the Object Lock condition keys policies test
(s3:object-lock-mode, -retain-until-date, -remaining-retention-days, -legal-hold)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.aws import code, status
from tests.support.server import Keys, MinicloudServer


@pytest.fixture
def s3(server: MinicloudServer) -> Any:
    return server.client("s3")


@pytest.fixture
def locked(s3: Any) -> str:
    name = f"lock-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    return name


def later(days: int = 1) -> datetime:
    return (datetime.now(UTC) + timedelta(days=days)).replace(microsecond=0)


def test_lock_enabled_bucket_is_versioned(s3: Any, locked: str) -> None:
    assert s3.get_bucket_versioning(Bucket=locked)["Status"] == "Enabled"
    config = s3.get_object_lock_configuration(Bucket=locked)["ObjectLockConfiguration"]
    assert config == {"ObjectLockEnabled": "Enabled"}
    with pytest.raises(ClientError) as err:
        s3.put_bucket_versioning(Bucket=locked, VersioningConfiguration={"Status": "Suspended"})
    assert code(err) == "InvalidBucketState" and status(err) == 409
    plain = f"plain-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=plain)
    with pytest.raises(ClientError) as err:
        s3.get_object_lock_configuration(Bucket=plain)
    assert code(err) == "ObjectLockConfigurationNotFoundError"
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=plain, Key="k", Body=b"x", ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=later())
    assert code(err) == "InvalidRequest"
    with pytest.raises(ClientError) as err:
        s3.put_object_lock_configuration(Bucket=plain, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled"})
    assert code(err) == "InvalidBucketState"
    # cleanup tools send the bypass header everywhere: it must simply work
    s3.put_object(Bucket=plain, Key="k", Body=b"x")
    s3.delete_object(Bucket=plain, Key="k", BypassGovernanceRetention=True)


def test_default_retention(s3: Any, locked: str) -> None:
    s3.put_object_lock_configuration(Bucket=locked, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 2}}})
    rule = s3.get_object_lock_configuration(Bucket=locked)["ObjectLockConfiguration"]["Rule"]
    assert rule == {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 2}}
    version = s3.put_object(Bucket=locked, Key="k", Body=b"x")["VersionId"]
    head = s3.head_object(Bucket=locked, Key="k")
    assert head["ObjectLockMode"] == "GOVERNANCE"
    assert later(1) < head["ObjectLockRetainUntilDate"] <= later(2) + timedelta(seconds=5)
    with pytest.raises(ClientError) as err:
        s3.delete_object(Bucket=locked, Key="k", VersionId=version)
    assert code(err) == "AccessDenied" and status(err) == 403
    s3.delete_object(Bucket=locked, Key="k", VersionId=version, BypassGovernanceRetention=True)
    for bad in ({"Mode": "GOVERNANCE"}, {"Mode": "GOVERNANCE", "Days": 1, "Years": 1}, {"Mode": "X", "Days": 1}):
        with pytest.raises(ClientError) as err:
            s3.put_object_lock_configuration(Bucket=locked, ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": bad}})
        assert code(err) == "MalformedXML", bad
    with pytest.raises(ClientError) as err:
        s3.put_object_lock_configuration(Bucket=locked, ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 0}}})
    assert code(err) == "InvalidRetentionPeriod"


def test_compliance_retention_cannot_be_bypassed(s3: Any, locked: str) -> None:
    until = later()
    version = s3.put_object(Bucket=locked, Key="c", Body=b"x", ObjectLockMode="COMPLIANCE",
                            ObjectLockRetainUntilDate=until)["VersionId"]
    retention = s3.get_object_retention(Bucket=locked, Key="c")["Retention"]
    assert retention["Mode"] == "COMPLIANCE" and retention["RetainUntilDate"] == until
    for kwargs in ({}, {"BypassGovernanceRetention": True}):
        with pytest.raises(ClientError) as err:
            s3.delete_object(Bucket=locked, Key="c", VersionId=version, **kwargs)
        assert code(err) == "AccessDenied"
    with pytest.raises(ClientError) as err:  # shortening a COMPLIANCE retention
        s3.put_object_retention(Bucket=locked, Key="c", BypassGovernanceRetention=True,
                                Retention={"Mode": "GOVERNANCE", "RetainUntilDate": later()})
    assert code(err) == "AccessDenied"
    s3.put_object_retention(Bucket=locked, Key="c", Retention={"Mode": "COMPLIANCE", "RetainUntilDate": later(3)})
    # deleting without a version id only adds a delete marker
    assert s3.delete_object(Bucket=locked, Key="c")["DeleteMarker"] is True
    result = s3.delete_objects(Bucket=locked, Delete={"Objects": [{"Key": "c", "VersionId": version}]})
    assert result["Errors"][0]["Code"] == "AccessDenied" and "Deleted" not in result


def test_governance_changes_need_bypass(s3: Any, locked: str) -> None:
    s3.put_object(Bucket=locked, Key="g", Body=b"x")
    with pytest.raises(ClientError) as err:
        s3.get_object_retention(Bucket=locked, Key="g")
    assert code(err) == "NoSuchObjectLockConfiguration"
    s3.put_object_retention(Bucket=locked, Key="g", Retention={"Mode": "GOVERNANCE", "RetainUntilDate": later(2)})
    with pytest.raises(ClientError) as err:
        s3.put_object_retention(Bucket=locked, Key="g", Retention={"Mode": "GOVERNANCE",
                                                                    "RetainUntilDate": later(1)})
    assert code(err) == "AccessDenied"
    shorter = later(1)
    s3.put_object_retention(Bucket=locked, Key="g", BypassGovernanceRetention=True,
                            Retention={"Mode": "GOVERNANCE", "RetainUntilDate": shorter})
    assert s3.get_object_retention(Bucket=locked, Key="g")["Retention"]["RetainUntilDate"] == shorter
    with pytest.raises(ClientError) as err:
        s3.put_object_retention(Bucket=locked, Key="g", Retention={"Mode": "GOVERNANCE",
                                                                    "RetainUntilDate": datetime(2000, 1, 1)})
    assert code(err) == "InvalidArgument"


def test_legal_hold(s3: Any, locked: str) -> None:
    version = s3.put_object(Bucket=locked, Key="h", Body=b"x", ObjectLockLegalHoldStatus="ON")["VersionId"]
    assert s3.get_object_legal_hold(Bucket=locked, Key="h")["LegalHold"]["Status"] == "ON"
    assert s3.head_object(Bucket=locked, Key="h")["ObjectLockLegalHoldStatus"] == "ON"
    with pytest.raises(ClientError) as err:
        s3.delete_object(Bucket=locked, Key="h", VersionId=version, BypassGovernanceRetention=True)
    assert code(err) == "AccessDenied"
    s3.put_object_legal_hold(Bucket=locked, Key="h", LegalHold={"Status": "OFF"})
    s3.delete_object(Bucket=locked, Key="h", VersionId=version)
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket=locked, Key="h", VersionId=version)
    assert status(err) == 404


def allow(server: MinicloudServer, user: str, name: str, *actions: str) -> None:
    server.client("iam").put_user_policy(UserName=user, PolicyName=name, PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": list(actions), "Resource": "*"}]}))


def user_client(server: MinicloudServer, *actions: str) -> tuple[str, Any]:
    """A new IAM user allowed ``actions`` on every resource, and an S3 client signing as it."""
    iam = server.client("iam")
    user = f"locker-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    allow(server, user, "s3", *actions)
    created = iam.create_access_key(UserName=user)["AccessKey"]
    return user, server.client("s3", Keys(created["AccessKeyId"], created["SecretAccessKey"]))


def versions_of(s3: Any, bucket: str, key: str) -> list[dict[str, Any]]:
    listed = s3.list_object_versions(Bucket=bucket, Prefix=key)
    return [v for v in listed.get("Versions", []) + listed.get("DeleteMarkers", []) if v["Key"] == key]


def test_bypass_needs_the_permission(server: MinicloudServer, s3: Any, locked: str) -> None:
    user, client = user_client(server, "s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion",
                               "s3:PutObjectRetention")
    version = client.put_object(Bucket=locked, Key="b", Body=b"x", ObjectLockMode="GOVERNANCE",
                                ObjectLockRetainUntilDate=later())["VersionId"]
    with pytest.raises(ClientError) as err:
        client.delete_object(Bucket=locked, Key="b", VersionId=version, BypassGovernanceRetention=True)
    assert code(err) == "AccessDenied"
    allow(server, user, "bypass", "s3:BypassGovernanceRetention")
    client.delete_object(Bucket=locked, Key="b", VersionId=version, BypassGovernanceRetention=True)


def test_multipart_upload_takes_its_lock(s3: Any, locked: str) -> None:
    upload = s3.create_multipart_upload(Bucket=locked, Key="mp", ObjectLockMode="GOVERNANCE",
                                        ObjectLockRetainUntilDate=later())
    etag = s3.upload_part(Bucket=locked, Key="mp", UploadId=upload["UploadId"], PartNumber=1, Body=b"data")["ETag"]
    done = s3.complete_multipart_upload(Bucket=locked, Key="mp", UploadId=upload["UploadId"],
                                        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert s3.get_object_retention(Bucket=locked, Key="mp")["Retention"]["Mode"] == "GOVERNANCE"
    with pytest.raises(ClientError) as err:
        s3.delete_object(Bucket=locked, Key="mp", VersionId=done["VersionId"])
    assert code(err) == "AccessDenied"


RETAIN = {"ObjectLockMode": "GOVERNANCE"}
HOLD = {"ObjectLockLegalHoldStatus": "ON"}


def test_put_object_lock_headers_need_their_permissions(server: MinicloudServer, s3: Any, locked: str) -> None:
    user, client = user_client(server, "s3:PutObject")
    until = later()
    for key, headers in (("r", {**RETAIN, "ObjectLockRetainUntilDate": until}), ("h", HOLD),
                         ("o", {"ObjectLockLegalHoldStatus": "OFF"})):
        with pytest.raises(ClientError) as err:
            client.put_object(Bucket=locked, Key=key, Body=b"x", **headers)
        assert code(err) == "AccessDenied" and status(err) == 403, key
        assert versions_of(s3, locked, key) == [], key  # nothing was stored
    client.put_object(Bucket=locked, Key="plain", Body=b"x")  # no lock asked for: s3:PutObject is enough
    allow(server, user, "retention", "s3:PutObjectRetention")
    client.put_object(Bucket=locked, Key="r", Body=b"x", ObjectLockRetainUntilDate=until, **RETAIN)
    assert s3.get_object_retention(Bucket=locked, Key="r")["Retention"] == {"Mode": "GOVERNANCE",
                                                                            "RetainUntilDate": until}
    with pytest.raises(ClientError) as err:  # retention is not a legal hold
        client.put_object(Bucket=locked, Key="h", Body=b"x", **HOLD)
    assert code(err) == "AccessDenied" and versions_of(s3, locked, "h") == []
    allow(server, user, "hold", "s3:PutObjectLegalHold")
    client.put_object(Bucket=locked, Key="h", Body=b"x", **HOLD)
    assert s3.get_object_legal_hold(Bucket=locked, Key="h")["LegalHold"]["Status"] == "ON"
    _, everything = user_client(server, "s3:*")
    everything.put_object(Bucket=locked, Key="all", Body=b"x", ObjectLockRetainUntilDate=until, **RETAIN, **HOLD)
    assert s3.head_object(Bucket=locked, Key="all")["ObjectLockLegalHoldStatus"] == "ON"


def test_multipart_lock_headers_need_their_permissions(server: MinicloudServer, s3: Any, locked: str) -> None:
    user, client = user_client(server, "s3:PutObject")
    until = later()
    for headers in ({**RETAIN, "ObjectLockRetainUntilDate": until}, HOLD):
        with pytest.raises(ClientError) as err:
            client.create_multipart_upload(Bucket=locked, Key="mp", **headers)
        assert code(err) == "AccessDenied" and status(err) == 403
    assert s3.list_multipart_uploads(Bucket=locked).get("Uploads", []) == []
    allow(server, user, "lock", "s3:PutObjectRetention", "s3:PutObjectLegalHold")
    upload = client.create_multipart_upload(Bucket=locked, Key="mp", ObjectLockRetainUntilDate=until,
                                            **RETAIN, **HOLD)["UploadId"]
    etag = client.upload_part(Bucket=locked, Key="mp", UploadId=upload, PartNumber=1, Body=b"data")["ETag"]
    client.complete_multipart_upload(Bucket=locked, Key="mp", UploadId=upload,
                                     MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert s3.get_object_retention(Bucket=locked, Key="mp")["Retention"]["RetainUntilDate"] == until
    assert s3.get_object_legal_hold(Bucket=locked, Key="mp")["LegalHold"]["Status"] == "ON"


def test_copy_lock_headers_need_their_permissions(server: MinicloudServer, s3: Any, locked: str) -> None:
    user, client = user_client(server, "s3:GetObject", "s3:PutObject")
    s3.put_object(Bucket=locked, Key="src", Body=b"x")
    source = {"Bucket": locked, "Key": "src"}
    until = later()
    for headers in ({**RETAIN, "ObjectLockRetainUntilDate": until}, HOLD):
        with pytest.raises(ClientError) as err:
            client.copy_object(Bucket=locked, Key="dst", CopySource=source, **headers)
        assert code(err) == "AccessDenied" and status(err) == 403
    assert versions_of(s3, locked, "dst") == []
    arn = server.client("iam").get_user(UserName=user)["User"]["Arn"]
    s3.put_bucket_policy(Bucket=locked, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": arn}, "Action": ["s3:PutObjectRetention", "s3:PutObjectLegalHold"],
        "Resource": f"arn:aws:s3:::{locked}/*"}]}))
    client.copy_object(Bucket=locked, Key="dst", CopySource=source, ObjectLockRetainUntilDate=until, **RETAIN, **HOLD)
    assert s3.get_object_retention(Bucket=locked, Key="dst")["Retention"]["Mode"] == "GOVERNANCE"
    assert s3.get_object_legal_hold(Bucket=locked, Key="dst")["LegalHold"]["Status"] == "ON"


def deny(s3: Any, bucket: str, actions: list[str], condition: dict[str, Any]) -> None:
    """A bucket policy denying ``actions`` on the bucket's objects to everyone, under ``condition``."""
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Principal": "*", "Action": actions, "Resource": f"arn:aws:s3:::{bucket}/*",
        "Condition": condition}]}))


def retained(days: int, mode: str = "GOVERNANCE") -> dict[str, Any]:
    return {"ObjectLockMode": mode, "ObjectLockRetainUntilDate": later(days)}


def test_policy_sets_a_minimum_retention(s3: Any, locked: str) -> None:
    """s3:object-lock-remaining-retention-days: the whole days left until the retain-until date a
    PutObject (headers) or a PutObjectRetention (body) asks for; absent when none is asked for."""
    deny(s3, locked, ["s3:PutObject", "s3:PutObjectRetention"],
         {"NumericLessThan": {"s3:object-lock-remaining-retention-days": "10"}})
    for key, days in (("five", 5), ("nine", 9)):
        with pytest.raises(ClientError) as err:
            s3.put_object(Bucket=locked, Key=key, Body=b"x", **retained(days))
        assert code(err) == "AccessDenied" and status(err) == 403, key
        assert versions_of(s3, locked, key) == [], key  # nothing was stored
    s3.put_object(Bucket=locked, Key="thirty", Body=b"x", **retained(30))
    s3.put_object(Bucket=locked, Key="ten", Body=b"x", **retained(10))  # 10 days, less the request's time
    assert s3.get_object_retention(Bucket=locked, Key="thirty")["Retention"]["RetainUntilDate"] > later(29)
    s3.put_object(Bucket=locked, Key="plain", Body=b"x")  # no retention asked for: no key, no deny
    with pytest.raises(ClientError) as err:
        s3.put_object_retention(Bucket=locked, Key="plain", Retention={"Mode": "GOVERNANCE",
                                                                        "RetainUntilDate": later(5)})
    assert code(err) == "AccessDenied"
    with pytest.raises(ClientError) as err:
        s3.get_object_retention(Bucket=locked, Key="plain")
    assert code(err) == "NoSuchObjectLockConfiguration"
    s3.put_object_retention(Bucket=locked, Key="plain", Retention={"Mode": "GOVERNANCE", "RetainUntilDate": later(30)})
    with pytest.raises(ClientError) as err:  # a multipart upload asks with its headers too
        s3.create_multipart_upload(Bucket=locked, Key="mp", **retained(5))
    assert code(err) == "AccessDenied"
    s3.create_multipart_upload(Bucket=locked, Key="mp", **retained(30))


def test_policy_sets_a_maximum_retention(s3: Any, locked: str) -> None:
    """The User Guide's "Setting retention limits" example: NumericGreaterThan on the remaining days,
    a part of a day counting as a day; s3:object-lock-retain-until-date bounds the date itself."""
    deny(s3, locked, ["s3:PutObjectRetention"],
         {"NumericGreaterThan": {"s3:object-lock-remaining-retention-days": "10"}})
    s3.put_object(Bucket=locked, Key="k", Body=b"x")
    s3.put_object_retention(Bucket=locked, Key="k", Retention={"Mode": "GOVERNANCE", "RetainUntilDate": later(10)})
    with pytest.raises(ClientError) as err:
        s3.put_object_retention(Bucket=locked, Key="k", Retention={
            "Mode": "GOVERNANCE", "RetainUntilDate": later(10) + timedelta(hours=1)})
    assert code(err) == "AccessDenied"
    latest = later(100)
    deny(s3, locked, ["s3:PutObject"],
         {"DateGreaterThan": {"s3:object-lock-retain-until-date": latest.strftime("%Y-%m-%dT%H:%M:%SZ")}})
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=locked, Key="far", Body=b"x", **retained(101))
    assert code(err) == "AccessDenied" and versions_of(s3, locked, "far") == []
    s3.put_object(Bucket=locked, Key="near", Body=b"x", ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=latest)


def test_policy_refuses_compliance_mode(s3: Any, locked: str) -> None:
    deny(s3, locked, ["s3:PutObject", "s3:PutObjectRetention"],
         {"StringEquals": {"s3:object-lock-mode": "COMPLIANCE"}})
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=locked, Key="c", Body=b"x", **retained(1, "COMPLIANCE"))
    assert code(err) == "AccessDenied" and status(err) == 403 and versions_of(s3, locked, "c") == []
    s3.put_object(Bucket=locked, Key="g", Body=b"x", **retained(1))
    with pytest.raises(ClientError) as err:
        s3.put_object_retention(Bucket=locked, Key="g", Retention={"Mode": "COMPLIANCE", "RetainUntilDate": later(2)})
    assert code(err) == "AccessDenied"
    assert s3.get_object_retention(Bucket=locked, Key="g")["Retention"]["Mode"] == "GOVERNANCE"
    s3.put_object_retention(Bucket=locked, Key="g", Retention={"Mode": "GOVERNANCE", "RetainUntilDate": later(2)})


def test_policy_on_the_legal_hold(s3: Any, locked: str) -> None:
    """s3:object-lock-legal-hold: ON or OFF, as PutObjectLegalHold's body or a write's header asks."""
    deny(s3, locked, ["s3:PutObjectLegalHold"], {"StringEquals": {"s3:object-lock-legal-hold": "OFF"}})
    s3.put_object(Bucket=locked, Key="h", Body=b"x", ObjectLockLegalHoldStatus="ON")
    with pytest.raises(ClientError) as err:
        s3.put_object_legal_hold(Bucket=locked, Key="h", LegalHold={"Status": "OFF"})
    assert code(err) == "AccessDenied" and status(err) == 403
    assert s3.get_object_legal_hold(Bucket=locked, Key="h")["LegalHold"]["Status"] == "ON"
    s3.put_object_legal_hold(Bucket=locked, Key="h", LegalHold={"Status": "ON"})
    with pytest.raises(ClientError) as err:  # the header asks for s3:PutObjectLegalHold with the key
        s3.put_object(Bucket=locked, Key="off", Body=b"x", ObjectLockLegalHoldStatus="OFF")
    assert code(err) == "AccessDenied" and versions_of(s3, locked, "off") == []


def test_lock_keys_are_absent_unless_asked_for(server: MinicloudServer, s3: Any, locked: str) -> None:
    """A write that leaves its lock to the bucket's default retention carries no Object Lock keys:
    ``Null`` finds them missing, ``...IfExists`` lets it through (here in an IAM policy)."""
    s3.put_object_lock_configuration(Bucket=locked, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 1}}})
    user, client = user_client(server, "s3:GetObject")
    server.client("iam").put_user_policy(UserName=user, PolicyName="governance", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": ["s3:PutObject", "s3:PutObjectRetention"], "Resource": "*",
            "Condition": {"StringEqualsIfExists": {"s3:object-lock-mode": "GOVERNANCE"}}}]}))
    client.put_object(Bucket=locked, Key="default", Body=b"x")  # the default's COMPLIANCE: no key
    assert s3.get_object_retention(Bucket=locked, Key="default")["Retention"]["Mode"] == "COMPLIANCE"
    client.put_object(Bucket=locked, Key="g", Body=b"x", **retained(1))
    with pytest.raises(ClientError) as err:
        client.put_object(Bucket=locked, Key="c", Body=b"x", **retained(1, "COMPLIANCE"))
    assert code(err) == "AccessDenied" and versions_of(s3, locked, "c") == []
    deny(s3, locked, ["s3:PutObject"], {"Null": {"s3:object-lock-retain-until-date": "true"}})
    with pytest.raises(ClientError) as err:
        client.put_object(Bucket=locked, Key="default", Body=b"y")
    assert code(err) == "AccessDenied"
    client.put_object(Bucket=locked, Key="g", Body=b"y", **retained(1))
