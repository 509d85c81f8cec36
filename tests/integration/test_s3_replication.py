"""S3 replication through boto3 and the AWS CLI against a real ``minicloud up`` with two regions:
the configuration is validated as S3 does, and the replication controller copies new versions
(PutObject, CopyObject, CompleteMultipartUpload) and delete markers to the destination buckets,
with S3's x-amz-replication-status on both sides."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.aws import code, status
from tests.support.polling import eventually
from tests.support.server import Keys, MinicloudServer

REGIONS = "us-east-1=us-east-1a,us-east-1b,us-east-1c;eu-west-1=eu-west-1a"
TRUST_S3 = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MinicloudServer]:
    srv = MinicloudServer(Path(tmp_path_factory.mktemp("replication")), env={"MINICLOUD_REGIONS": REGIONS})
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def s3(cloud: MinicloudServer) -> Any:
    return cloud.client("s3")


def make_role(server: MinicloudServer, actions: list[str], trust: dict[str, Any] = TRUST_S3) -> str:
    iam = server.client("iam")
    name = f"replication-{uuid.uuid4().hex[:8]}"
    arn = str(iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"])
    iam.put_role_policy(RoleName=name, PolicyName="replication", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}))
    return arn


@pytest.fixture(scope="module")
def role(cloud: MinicloudServer) -> str:
    return make_role(cloud, ["s3:*", "kms:*"])


def versioned(s3: Any, *, versioning: str | None = "Enabled", **create: Any) -> str:
    name = f"repl-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name, **create)
    if versioning:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": versioning})
    return name


@pytest.fixture
def source(s3: Any) -> str:
    return versioned(s3)


@pytest.fixture
def dest(s3: Any) -> str:
    return versioned(s3)


def rule(dest: str, **extra: Any) -> dict[str, Any]:
    """A V2 rule replicating everything to ``dest`` (``extra`` replaces or adds members)."""
    return {"ID": f"to-{dest}", "Priority": 1, "Status": "Enabled", "Filter": {},
            "DeleteMarkerReplication": {"Status": "Disabled"}, "Destination": {"Bucket": f"arn:aws:s3:::{dest}"},
            **extra}


def configure(s3: Any, source: str, role: str, *rules: dict[str, Any]) -> None:
    s3.put_bucket_replication(Bucket=source, ReplicationConfiguration={"Role": role, "Rules": list(rules)})




def replication_status(s3: Any, bucket: str, key: str, version_id: str | None = None) -> str | None:
    head = s3.head_object(Bucket=bucket, Key=key, **({"VersionId": version_id} if version_id else {}))
    return head.get("ReplicationStatus")


def settled(s3: Any, bucket: str, key: str, version_id: str | None = None, timeout: float = 30.0) -> str:
    """The source version's final status, once it is no longer PENDING."""
    found: list[str | None] = []

    def done() -> bool:
        found[:] = [replication_status(s3, bucket, key, version_id)]
        return found[0] not in ("PENDING",)
    eventually(done, f"replication of {bucket}/{key}", timeout)
    return str(found[0])


def version_ids(s3: Any, bucket: str) -> list[tuple[str, str, bool]]:
    listed = s3.list_object_versions(Bucket=bucket)
    return sorted([(v["Key"], v["VersionId"], False) for v in listed.get("Versions", [])]
                  + [(m["Key"], m["VersionId"], True) for m in listed.get("DeleteMarkers", [])])


# -- the configuration -----------------------------------------------------------------------------

def test_get_without_a_configuration_is_404(s3: Any, source: str) -> None:
    with pytest.raises(ClientError) as err:
        s3.get_bucket_replication(Bucket=source)
    assert code(err) == "ReplicationConfigurationNotFoundError" and status(err) == 404
    assert err.value.response["Error"]["BucketName"] == source


def test_put_get_delete(s3: Any, source: str, dest: str, role: str) -> None:
    other = versioned(s3)
    rules = [rule(dest, ID="docs", Priority=2, Filter={"Prefix": "docs/"},
                  Destination={"Bucket": f"arn:aws:s3:::{dest}", "StorageClass": "STANDARD_IA"}),
             {"Priority": 1, "Status": "Disabled", "Filter": {"And": {"Prefix": "a", "Tags": [
                 {"Key": "k", "Value": "v"}]}}, "DeleteMarkerReplication": {"Status": "Disabled"},
              "Destination": {"Bucket": f"arn:aws:s3:::{other}"},
              "SourceSelectionCriteria": {"ReplicaModifications": {"Status": "Enabled"}}}]
    configure(s3, source, role, *rules)
    got = s3.get_bucket_replication(Bucket=source)["ReplicationConfiguration"]
    assert got["Role"] == role
    assert got["Rules"][0] == rules[0]
    generated = got["Rules"][1].pop("ID")
    assert generated and got["Rules"][1] == rules[1]
    configure(s3, source, role, {"ID": "v1", "Prefix": "logs/", "Status": "Enabled",
                                 "Destination": {"Bucket": f"arn:aws:s3:::{dest}"}})  # replaces it whole
    got = s3.get_bucket_replication(Bucket=source)["ReplicationConfiguration"]
    assert got["Rules"] == [{"ID": "v1", "Prefix": "logs/", "Status": "Enabled",
                             "Destination": {"Bucket": f"arn:aws:s3:::{dest}"}}]
    s3.delete_bucket_replication(Bucket=source)
    with pytest.raises(ClientError) as err:
        s3.get_bucket_replication(Bucket=source)
    assert code(err) == "ReplicationConfigurationNotFoundError"


@pytest.mark.parametrize("versioning", [None, "Suspended"])
def test_source_must_be_versioned(s3: Any, dest: str, role: str, versioning: str | None) -> None:
    source = versioned(s3, versioning=versioning)
    with pytest.raises(ClientError) as err:
        configure(s3, source, role, rule(dest))
    assert code(err) == "InvalidRequest" and status(err) == 400
    assert err.value.response["Error"]["Message"] == ("Versioning must be 'Enabled' on the bucket to apply a "
                                                      "replication configuration")


def test_destination_must_exist_and_be_versioned(s3: Any, source: str, role: str) -> None:
    with pytest.raises(ClientError) as err:
        configure(s3, source, role, rule(f"missing-{uuid.uuid4().hex[:8]}"))
    assert code(err) == "InvalidRequest"
    assert err.value.response["Error"]["Message"] == "Destination bucket must exist."
    unversioned = versioned(s3, versioning=None)
    with pytest.raises(ClientError) as err:
        configure(s3, source, role, rule(unversioned))
    assert code(err) == "InvalidRequest"
    assert err.value.response["Error"]["Message"] == "Destination bucket must have versioning enabled."


INVALID: list[tuple[str, Callable[[str], dict[str, Any]], str]] = [
    ("v2 without DeleteMarkerReplication", lambda d: {k: v for k, v in rule(d).items()
                                                      if k != "DeleteMarkerReplication"}, "InvalidRequest"),
    ("v1 with a Priority", lambda d: {"Prefix": "", "Priority": 1, "Status": "Enabled",
                                      "Destination": {"Bucket": f"arn:aws:s3:::{d}"}}, "InvalidRequest"),
    ("tag filter replicating delete markers", lambda d: rule(d, Filter={"Tag": {"Key": "k", "Value": "v"}},
                                                             DeleteMarkerReplication={"Status": "Enabled"}),
     "InvalidRequest"),
    ("an ID over 255 characters", lambda d: rule(d, ID="x" * 256), "InvalidArgument"),
    ("SSE-KMS without a replica key", lambda d: rule(d, SourceSelectionCriteria={
        "SseKmsEncryptedObjects": {"Status": "Enabled"}}), "InvalidRequest"),
    ("a replica key without SSE-KMS objects", lambda d: rule(d, Destination={
        "Bucket": f"arn:aws:s3:::{d}", "EncryptionConfiguration": {"ReplicaKmsKeyID": "alias/x"}}),
     "InvalidRequest"),
    ("a destination that is no bucket ARN", lambda d: rule(d, Destination={"Bucket": d}), "InvalidArgument"),
    ("AccessControlTranslation without Account", lambda d: rule(d, Destination={
        "Bucket": f"arn:aws:s3:::{d}", "AccessControlTranslation": {"Owner": "Destination"}}), "InvalidRequest"),
    ("ReplicationTime without Metrics", lambda d: rule(d, Destination={
        "Bucket": f"arn:aws:s3:::{d}", "ReplicationTime": {"Status": "Enabled", "Time": {"Minutes": 15}}}),
     "InvalidRequest"),
    ("existing object replication", lambda d: rule(d, ExistingObjectReplication={"Status": "Enabled"}),
     "NotImplemented"),
]


@pytest.mark.parametrize(("make", "expected"), [(m, e) for _, m, e in INVALID], ids=[n for n, _, _ in INVALID])
def test_invalid_rules(s3: Any, source: str, dest: str, role: str, make: Callable[[str], dict[str, Any]],
                       expected: str) -> None:
    with pytest.raises(ClientError) as err:
        configure(s3, source, role, make(dest))
    assert code(err) == expected


def test_invalid_rule_sets(s3: Any, source: str, dest: str, role: str) -> None:
    with pytest.raises(ClientError) as err:  # the same ID twice
        configure(s3, source, role, rule(dest, ID="same", Priority=1), rule(dest, ID="same", Priority=2))
    assert code(err) == "InvalidArgument"
    with pytest.raises(ClientError) as err:  # the same priority twice
        configure(s3, source, role, rule(dest, ID="a"), rule(dest, ID="b"))
    assert code(err) == "InvalidRequest"
    with pytest.raises(ClientError) as err:  # to itself
        configure(s3, source, role, rule(source))
    assert code(err) == "InvalidRequest"
    with pytest.raises(ClientError) as err:  # V1 and V2 rules together
        configure(s3, source, role, rule(dest), {"Prefix": "x", "Status": "Enabled",
                                                 "Destination": {"Bucket": f"arn:aws:s3:::{dest}"}})
    assert code(err) == "InvalidRequest"
    with pytest.raises(ClientError) as err:
        s3.get_bucket_replication(Bucket=source)
    assert code(err) == "ReplicationConfigurationNotFoundError"  # nothing refused was kept


def test_malformed_documents(cloud: MinicloudServer, source: str, dest: str, role: str) -> None:
    raw = cloud.client("s3", parameter_validation=False)  # what boto3 would refuse to send
    for config in ({"Role": role, "Rules": [rule(dest, Status="On")]},
                   {"Role": role, "Rules": [rule(dest, Prefix="both")]},
                   {"Role": role, "Rules": [rule(dest, Filter={"Prefix": "a", "Tag": {"Key": "k", "Value": "v"}})]},
                   {"Role": role, "Rules": [rule(dest, DeleteMarkerReplication={"Status": "Sometimes"})]},
                   {"Role": role, "Rules": [rule(dest, Destination={"Bucket": f"arn:aws:s3:::{dest}",
                                                                    "StorageClass": "COLD"})]}):
        with pytest.raises(ClientError) as err:
            raw.put_bucket_replication(Bucket=source, ReplicationConfiguration=config)
        assert code(err) == "MalformedXML", config


def test_versioning_cannot_be_suspended_under_replication(s3: Any, source: str, dest: str, role: str) -> None:
    configure(s3, source, role, rule(dest))
    with pytest.raises(ClientError) as err:
        s3.put_bucket_versioning(Bucket=source, VersioningConfiguration={"Status": "Suspended"})
    assert code(err) == "InvalidBucketState" and status(err) == 409
    assert s3.get_bucket_versioning(Bucket=source)["Status"] == "Enabled"
    s3.delete_bucket_replication(Bucket=source)
    s3.put_bucket_versioning(Bucket=source, VersioningConfiguration={"Status": "Suspended"})
    assert s3.get_bucket_versioning(Bucket=source)["Status"] == "Suspended"


def test_callers_need_the_replication_actions_and_pass_role(cloud: MinicloudServer, s3: Any, source: str,
                                                            dest: str, role: str) -> None:
    iam = cloud.client("iam")
    name = f"repl-admin-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="read", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetReplicationConfiguration",
                                                "Resource": f"arn:aws:s3:::{source}"}]}))
    made = iam.create_access_key(UserName=name)["AccessKey"]
    user = cloud.client("s3", Keys(made["AccessKeyId"], made["SecretAccessKey"]))
    configure(s3, source, role, rule(dest))
    assert user.get_bucket_replication(Bucket=source)["ReplicationConfiguration"]["Role"] == role
    for attempt in (lambda: configure(user, source, role, rule(dest)),
                    lambda: user.delete_bucket_replication(Bucket=source)):
        with pytest.raises(ClientError) as err:
            attempt()
        assert code(err) == "AccessDenied"
    iam.put_user_policy(UserName=name, PolicyName="write", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:PutReplicationConfiguration",
                                                "Resource": f"arn:aws:s3:::{source}"}]}))

    def refused_for_pass_role() -> bool:
        try:
            configure(user, source, role, rule(dest))
        except ClientError as error:
            return "iam:PassRole" in error.response["Error"]["Message"]
        pytest.fail("PutBucketReplication succeeded without iam:PassRole")
    eventually(refused_for_pass_role, "s3:PutReplicationConfiguration granted, iam:PassRole still missing")
    iam.put_user_policy(UserName=name, PolicyName="pass", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:PassRole", "Resource": role}]}))

    def accepted() -> bool:
        try:
            configure(user, source, role, rule(dest, ID="by-user"))
        except ClientError:
            return False
        return True
    eventually(accepted, "PutBucketReplication with iam:PassRole")
    user.delete_bucket_replication(Bucket=source)


# -- replicating -----------------------------------------------------------------------------------

def test_put_object_is_replicated_with_its_metadata(s3: Any, source: str, dest: str, role: str) -> None:
    configure(s3, source, role, rule(dest))
    body = b"replicate me\n" * 100
    put = s3.put_object(Bucket=source, Key="dir/file.txt", Body=body, ContentType="text/plain",
                        Metadata={"colour": "blue"}, Tagging="team=storage&tier=1", ChecksumAlgorithm="SHA256",
                        CacheControl="max-age=60")
    assert settled(s3, source, "dir/file.txt") == "COMPLETED"
    original = s3.head_object(Bucket=source, Key="dir/file.txt", ChecksumMode="ENABLED")
    replica = s3.get_object(Bucket=dest, Key="dir/file.txt", ChecksumMode="ENABLED")
    assert replica["Body"].read() == body
    assert replica["ReplicationStatus"] == "REPLICA"
    assert replica["VersionId"] == put["VersionId"]
    assert replica["ETag"] == put["ETag"] == original["ETag"]
    assert replica["LastModified"] == original["LastModified"]
    assert replica["ChecksumSHA256"] == put["ChecksumSHA256"]
    assert put["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(body).digest()).decode()
    assert replica["ContentType"] == "text/plain" and replica["CacheControl"] == "max-age=60"
    assert replica["Metadata"] == {"colour": "blue"}
    assert replica["ServerSideEncryption"] == "AES256"
    assert s3.get_object_tagging(Bucket=dest, Key="dir/file.txt")["TagSet"] == [
        {"Key": "team", "Value": "storage"}, {"Key": "tier", "Value": "1"}]
    assert version_ids(s3, dest) == [("dir/file.txt", put["VersionId"], False)]
    # a second version replicates as the newer one
    second = s3.put_object(Bucket=source, Key="dir/file.txt", Body=b"v2")
    assert settled(s3, source, "dir/file.txt", second["VersionId"]) == "COMPLETED"
    assert s3.get_object(Bucket=dest, Key="dir/file.txt")["Body"].read() == b"v2"
    assert s3.get_object(Bucket=dest, Key="dir/file.txt", VersionId=put["VersionId"])["Body"].read() == body


def test_copy_and_multipart_uploads_are_replicated(s3: Any, source: str, dest: str, role: str) -> None:
    s3.put_object(Bucket=source, Key="before", Body=b"written before the configuration")
    configure(s3, source, role, rule(dest))
    copy = s3.copy_object(Bucket=source, Key="copy", CopySource={"Bucket": source, "Key": "before"})
    upload = s3.create_multipart_upload(Bucket=source, Key="big", ContentType="application/x-big")
    first, last = b"a" * (5 * 1024 * 1024), b"b" * 1000
    parts = [{"PartNumber": n, "ETag": s3.upload_part(Bucket=source, Key="big", UploadId=upload["UploadId"],
                                                      PartNumber=n, Body=data)["ETag"]}
             for n, data in ((1, first), (2, last))]
    done = s3.complete_multipart_upload(Bucket=source, Key="big", UploadId=upload["UploadId"],
                                        MultipartUpload={"Parts": parts})
    assert settled(s3, source, "copy") == "COMPLETED"
    assert settled(s3, source, "big") == "COMPLETED"
    assert replication_status(s3, source, "before") is None  # objects from before are not replicated
    assert s3.get_object(Bucket=dest, Key="copy")["Body"].read() == b"written before the configuration"
    assert s3.head_object(Bucket=dest, Key="copy")["VersionId"] == copy["VersionId"]
    big = s3.get_object(Bucket=dest, Key="big")
    assert big["ETag"] == done["ETag"] and big["ETag"].endswith('-2"') and big["ContentType"] == "application/x-big"
    assert big["Body"].read() == first + last
    assert s3.head_object(Bucket=dest, Key="big", PartNumber=2)["ContentLength"] == len(last)
    assert [k for k, _, _ in version_ids(s3, dest)] == ["big", "copy"]


@pytest.mark.parametrize("replicate_markers", [True, False])
def test_delete_markers(s3: Any, source: str, dest: str, role: str, replicate_markers: bool) -> None:
    configure(s3, source, role, rule(dest, DeleteMarkerReplication={
        "Status": "Enabled" if replicate_markers else "Disabled"}))
    put = s3.put_object(Bucket=source, Key="doomed", Body=b"x")
    kept = s3.put_object(Bucket=source, Key="kept", Body=b"y")
    assert settled(s3, source, "doomed") == "COMPLETED" and settled(s3, source, "kept") == "COMPLETED"
    marker = s3.delete_object(Bucket=source, Key="doomed")["VersionId"]
    s3.delete_objects(Bucket=source, Delete={"Objects": [{"Key": "kept", "VersionId": kept["VersionId"]}]})
    expected = [("doomed", marker, True)] if replicate_markers else []
    expected += [("doomed", put["VersionId"], False), ("kept", kept["VersionId"], False)]

    def markers_settled() -> bool:
        return version_ids(s3, dest) == sorted(expected)
    eventually(markers_settled, "the destination's versions")
    # (a deletion by version id is not replicated: "kept" stays in the destination)
    assert s3.get_object(Bucket=dest, Key="kept")["Body"].read() == b"y"
    if replicate_markers:
        with pytest.raises(ClientError) as err:
            s3.get_object(Bucket=dest, Key="doomed")
        assert code(err) == "NoSuchKey"
    else:
        assert s3.get_object(Bucket=dest, Key="doomed")["Body"].read() == b"x"


def test_delete_objects_markers_and_v1_rules(s3: Any, source: str, dest: str, role: str) -> None:
    configure(s3, source, role, {"ID": "v1", "Prefix": "", "Status": "Enabled",
                                 "Destination": {"Bucket": f"arn:aws:s3:::{dest}"}})
    for key in ("a", "b"):
        s3.put_object(Bucket=source, Key=key, Body=key.encode())
        assert settled(s3, source, key) == "COMPLETED"
    deleted = s3.delete_objects(Bucket=source, Delete={"Objects": [{"Key": "a"}, {"Key": "b"}]})["Deleted"]
    markers = {d["Key"]: d["DeleteMarkerVersionId"] for d in deleted}

    def replicated() -> bool:
        found = {k: v for k, v, marker in version_ids(s3, dest) if marker}
        return found == markers
    eventually(replicated, "delete markers of DeleteObjects under a V1 rule")


def test_rules_select_by_prefix_and_tags(s3: Any, source: str, dest: str, role: str) -> None:
    other = versioned(s3)
    configure(s3, source, role,
              rule(dest, ID="logs", Priority=1, Filter={"Prefix": "logs/"}),
              rule(other, ID="tagged", Priority=2, Filter={"And": {"Prefix": "data/", "Tags": [
                  {"Key": "copy", "Value": "yes"}]}}))
    s3.put_object(Bucket=source, Key="logs/1", Body=b"log")
    s3.put_object(Bucket=source, Key="data/1", Body=b"data", Tagging="copy=yes")
    s3.put_object(Bucket=source, Key="data/2", Body=b"data", Tagging="copy=no")
    s3.put_object(Bucket=source, Key="other", Body=b"none")
    assert settled(s3, source, "logs/1") == "COMPLETED"
    assert settled(s3, source, "data/1") == "COMPLETED"
    assert replication_status(s3, source, "data/2") is None
    assert replication_status(s3, source, "other") is None
    assert [k for k, _, _ in version_ids(s3, dest)] == ["logs/1"]
    assert [k for k, _, _ in version_ids(s3, other)] == ["data/1"]


def test_one_version_to_several_destinations_by_priority(s3: Any, source: str, dest: str, role: str) -> None:
    other = versioned(s3)
    configure(s3, source, role,
              rule(dest, ID="low", Priority=1, Destination={"Bucket": f"arn:aws:s3:::{dest}",
                                                          "StorageClass": "ONEZONE_IA"}),
              rule(dest, ID="high", Priority=5, Filter={"Prefix": "ia/"},
                   Destination={"Bucket": f"arn:aws:s3:::{dest}", "StorageClass": "STANDARD_IA"}),
              rule(other, ID="other", Priority=3))
    s3.put_object(Bucket=source, Key="ia/x", Body=b"x")
    s3.put_object(Bucket=source, Key="plain", Body=b"p")
    assert settled(s3, source, "ia/x") == "COMPLETED" and settled(s3, source, "plain") == "COMPLETED"
    assert s3.head_object(Bucket=dest, Key="ia/x")["StorageClass"] == "STANDARD_IA"  # the higher priority's
    assert s3.head_object(Bucket=dest, Key="plain")["StorageClass"] == "ONEZONE_IA"
    assert s3.get_object(Bucket=dest, Key="plain")["Body"].read() == b"p"
    assert "StorageClass" not in s3.head_object(Bucket=other, Key="ia/x")  # the source's: STANDARD
    assert s3.get_object(Bucket=other, Key="plain")["Body"].read() == b"p"


def test_cross_region(cloud: MinicloudServer, s3: Any, source: str, role: str) -> None:
    europe = cloud.client("s3", region="eu-west-1")
    dest = versioned(europe, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    configure(s3, source, role, rule(dest))
    put = s3.put_object(Bucket=source, Key="far", Body=b"across regions")
    assert settled(s3, source, "far") == "COMPLETED"
    replica = europe.get_object(Bucket=dest, Key="far")
    assert replica["Body"].read() == b"across regions" and replica["VersionId"] == put["VersionId"]
    assert europe.get_bucket_location(Bucket=dest)["LocationConstraint"] == "eu-west-1"


def test_two_way_replication_does_not_loop(s3: Any, source: str, dest: str, role: str) -> None:
    both_ways = {"SourceSelectionCriteria": {"ReplicaModifications": {"Status": "Enabled"}}}
    configure(s3, source, role, rule(dest, **both_ways))
    configure(s3, dest, role, rule(source, **both_ways))
    one = s3.put_object(Bucket=source, Key="from-a", Body=b"a")
    two = s3.put_object(Bucket=dest, Key="from-b", Body=b"b")
    assert settled(s3, source, "from-a") == "COMPLETED" and settled(s3, dest, "from-b") == "COMPLETED"
    eventually(lambda: version_ids(s3, source) == version_ids(s3, dest), "both buckets alike")
    assert version_ids(s3, source) == [("from-a", one["VersionId"], False), ("from-b", two["VersionId"], False)]
    assert replication_status(s3, source, "from-b") == "REPLICA"
    assert replication_status(s3, dest, "from-a") == "REPLICA"


def test_fails_when_the_destination_is_gone_or_the_role_may_not(cloud: MinicloudServer, s3: Any, source: str,
                                                               dest: str, role: str) -> None:
    configure(s3, source, role, rule(dest))
    s3.delete_bucket(Bucket=dest)
    s3.put_object(Bucket=source, Key="nowhere", Body=b"x")
    assert settled(s3, source, "nowhere") == "FAILED"
    target = versioned(s3)
    read_only = make_role(cloud, ["s3:Get*", "s3:List*"])
    configure(s3, source, read_only, rule(target))
    s3.put_object(Bucket=source, Key="refused", Body=b"x")
    assert settled(s3, source, "refused") == "FAILED"
    untrusting = make_role(cloud, ["s3:*"], trust={"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
    configure(s3, source, untrusting, rule(target))
    s3.put_object(Bucket=source, Key="untrusted", Body=b"x")
    assert settled(s3, source, "untrusted") == "FAILED"
    missing = role.rsplit("/", 1)[0] + "/no-such-role"
    configure(s3, source, missing, rule(target))
    s3.put_object(Bucket=source, Key="no-role", Body=b"x")
    assert settled(s3, source, "no-role") == "FAILED"
    assert version_ids(s3, target) == []
    configure(s3, source, role, rule(target))
    s3.put_object(Bucket=source, Key="allowed", Body=b"x")
    assert settled(s3, source, "allowed") == "COMPLETED"


def test_the_destination_bucket_policy_can_refuse(s3: Any, source: str, dest: str, role: str) -> None:
    s3.put_bucket_policy(Bucket=dest, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": {"AWS": role}, "Action": "s3:ReplicateObject",
         "Resource": f"arn:aws:s3:::{dest}/secret/*"}]}))
    configure(s3, source, role, rule(dest))
    s3.put_object(Bucket=source, Key="secret/x", Body=b"x")
    s3.put_object(Bucket=source, Key="public/x", Body=b"x")
    assert settled(s3, source, "secret/x") == "FAILED"
    assert settled(s3, source, "public/x") == "COMPLETED"


def test_customer_keys_open_the_replica(s3: Any, source: str, dest: str, role: str) -> None:
    configure(s3, source, role, rule(dest))
    key = b"k" * 32
    sse_c = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": base64.b64encode(key).decode(),
             "SSECustomerKeyMD5": base64.b64encode(hashlib.md5(key).digest()).decode()}
    s3.put_object(Bucket=source, Key="mine", Body=b"customer sealed", **sse_c)
    eventually(lambda: s3.head_object(Bucket=source, Key="mine", **sse_c).get("ReplicationStatus") == "COMPLETED",
               "replication of an SSE-C object")
    assert s3.get_object(Bucket=dest, Key="mine", **sse_c)["Body"].read() == b"customer sealed"
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=dest, Key="mine")
    assert code(err) == "InvalidRequest"


def test_sse_kms_objects_only_when_the_rule_opts_in(cloud: MinicloudServer, s3: Any, source: str, dest: str,
                                                    role: str) -> None:
    kms = cloud.client("kms")
    source_key = kms.create_key()["KeyMetadata"]["Arn"]
    replica_key = kms.create_key()["KeyMetadata"]["Arn"]
    configure(s3, source, role, rule(dest))
    s3.put_object(Bucket=source, Key="kms-skipped", Body=b"k", ServerSideEncryption="aws:kms", SSEKMSKeyId=source_key)
    s3.put_object(Bucket=source, Key="plain", Body=b"p")
    assert settled(s3, source, "plain") == "COMPLETED"
    assert replication_status(s3, source, "kms-skipped") is None
    configure(s3, source, role, rule(dest, SourceSelectionCriteria={"SseKmsEncryptedObjects": {"Status": "Enabled"}},
                                     Destination={"Bucket": f"arn:aws:s3:::{dest}",
                                                  "EncryptionConfiguration": {"ReplicaKmsKeyID": replica_key}}))
    body = b"sealed under kms " * 5000
    s3.put_object(Bucket=source, Key="kms", Body=body, ServerSideEncryption="aws:kms", SSEKMSKeyId=source_key)
    assert settled(s3, source, "kms") == "COMPLETED"
    replica = s3.get_object(Bucket=dest, Key="kms")
    assert replica["Body"].read() == body
    assert replica["ServerSideEncryption"] == "aws:kms" and replica["SSEKMSKeyId"] == replica_key
    assert replica["ReplicationStatus"] == "REPLICA"
    kms.disable_key(KeyId=replica_key)  # the replica is sealed under the replica key alone
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=dest, Key="kms")
    assert code(err) == "KMS.DisabledException"
    assert s3.get_object(Bucket=source, Key="kms")["Body"].read() == body


def test_aws_cli(cloud: MinicloudServer, s3: Any, source: str, dest: str, role: str, tmp_path: Path) -> None:
    document = tmp_path / "replication.json"
    document.write_text(json.dumps({"Role": role, "Rules": [rule(dest, ID="cli", Filter={"Prefix": "cli/"})]}))
    cloud.aws("s3api", "put-bucket-replication", "--bucket", source, "--replication-configuration",
              f"file://{document}")
    got = cloud.aws_json("s3api", "get-bucket-replication", "--bucket", source)["ReplicationConfiguration"]
    assert got["Rules"][0]["ID"] == "cli" and got["Rules"][0]["Filter"] == {"Prefix": "cli/"}
    upload = tmp_path / "f.txt"
    upload.write_bytes(b"through the cli\n")
    cloud.aws("s3", "cp", str(upload), f"s3://{source}/cli/f.txt")
    assert settled(s3, source, "cli/f.txt") == "COMPLETED"
    head = cloud.aws_json("s3api", "head-object", "--bucket", dest, "--key", "cli/f.txt")
    assert head["ReplicationStatus"] == "REPLICA"
    cloud.aws("s3api", "delete-bucket-replication", "--bucket", source)
    missing = cloud.aws("s3api", "get-bucket-replication", "--bucket", source, check=False)
    assert missing.returncode != 0 and "ReplicationConfigurationNotFoundError" in missing.stderr


# -- restarts --------------------------------------------------------------------------------------

def test_pending_work_survives_a_crash(fresh_server: MinicloudServer) -> None:
    """Versions written while no controller runs stay PENDING; the server is killed (-9); the next
    start replicates them from what the metadata store says."""
    fresh_server.env["MINICLOUD_CONTROLLERS"] = "0"
    fresh_server.start()
    s3 = fresh_server.client("s3")
    role = make_role(fresh_server, ["s3:*"])
    source, dest = versioned(s3), versioned(s3)
    configure(s3, source, role, rule(dest, DeleteMarkerReplication={"Status": "Enabled"}))
    puts = {f"k{i}": s3.put_object(Bucket=source, Key=f"k{i}", Body=f"body {i}".encode())["VersionId"]
            for i in range(5)}
    marker = s3.delete_object(Bucket=source, Key="k0")["VersionId"]
    assert {replication_status(s3, source, key) for key in puts if key != "k0"} == {"PENDING"}
    assert replication_status(s3, source, "k1", puts["k1"]) == "PENDING"
    assert version_ids(s3, dest) == []
    fresh_server.kill()
    fresh_server.env["MINICLOUD_CONTROLLERS"] = "1"
    fresh_server.start()
    s3 = fresh_server.client("s3")
    for key, version_id in puts.items():
        assert settled(s3, source, key, version_id) == "COMPLETED"
        assert s3.get_object(Bucket=dest, Key=key, VersionId=version_id)["Body"].read() == f"body {key[1:]}".encode()
    eventually(lambda: ("k0", marker, True) in version_ids(s3, dest), "the delete marker replicated")


def test_object_lock_retention_is_replicated(s3: Any, role: str) -> None:
    locked = f"repl-lock-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=locked, ObjectLockEnabledForBucket=True)
    unlocked, target = versioned(s3), f"repl-lock-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=target, ObjectLockEnabledForBucket=True)
    until = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    configure(s3, locked, role, rule(unlocked))
    s3.put_object(Bucket=locked, Key="held", Body=b"x", ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=until)
    assert settled(s3, locked, "held") == "FAILED"  # the destination has no Object Lock
    configure(s3, locked, role, rule(target))
    put = s3.put_object(Bucket=locked, Key="held", Body=b"y", ObjectLockMode="GOVERNANCE",
                        ObjectLockRetainUntilDate=until, ObjectLockLegalHoldStatus="ON")
    assert settled(s3, locked, "held", put["VersionId"]) == "COMPLETED"
    replica = s3.head_object(Bucket=target, Key="held")
    assert replica["ObjectLockMode"] == "GOVERNANCE" and replica["ObjectLockRetainUntilDate"] == until
    assert replica["ObjectLockLegalHoldStatus"] == "ON"
    with pytest.raises(ClientError) as err:
        s3.delete_object(Bucket=target, Key="held", VersionId=put["VersionId"])
    assert code(err) == "AccessDenied"


# -- metadata changes ------------------------------------------------------------------------------

def tag_set(s3: Any, bucket: str, key: str, version_id: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=key, VersionId=version_id)["TagSet"]}


def public_read(s3: Any, bucket: str, key: str, version_id: str) -> bool:
    grants = s3.get_object_acl(Bucket=bucket, Key=key, VersionId=version_id)["Grants"]
    return any(g["Grantee"].get("URI", "").endswith("/AllUsers") and g["Permission"] == "READ" for g in grants)


def test_tag_and_acl_changes_reach_the_replica(s3: Any, source: str, dest: str, role: str) -> None:
    configure(s3, source, role, rule(dest))
    put = s3.put_object(Bucket=source, Key="doc", Body=b"x", Tagging="stage=draft")
    version = put["VersionId"]
    assert settled(s3, source, "doc") == "COMPLETED"
    written = s3.head_object(Bucket=dest, Key="doc")
    s3.put_object_tagging(Bucket=source, Key="doc", Tagging={"TagSet": [
        {"Key": "stage", "Value": "final"}, {"Key": "owner", "Value": "ops"}]})
    eventually(lambda: tag_set(s3, dest, "doc", version) == {"stage": "final", "owner": "ops"}, "the tags replicated")
    assert settled(s3, source, "doc") == "COMPLETED"
    # in place: the same single version, its Last-Modified and ETag kept, still a replica
    replica = s3.head_object(Bucket=dest, Key="doc")
    assert (replica["LastModified"], replica["ETag"]) == (written["LastModified"], written["ETag"])
    assert replica["ReplicationStatus"] == "REPLICA" and replica["VersionId"] == version
    assert version_ids(s3, dest) == [("doc", version, False)]
    s3.delete_object_tagging(Bucket=source, Key="doc")
    eventually(lambda: tag_set(s3, dest, "doc", version) == {}, "the tags' deletion replicated")
    s3.put_object_acl(Bucket=source, Key="doc", ACL="public-read")
    eventually(lambda: public_read(s3, dest, "doc", version), "the ACL replicated")
    assert settled(s3, source, "doc") == "COMPLETED"
    assert version_ids(s3, dest) == [("doc", version, False)]


def test_object_lock_changes_reach_the_replica(s3: Any, role: str) -> None:
    locked, target = (f"repl-lock-{uuid.uuid4().hex[:8]}" for _ in range(2))
    for name in (locked, target):
        s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    configure(s3, locked, role, rule(target))
    version = s3.put_object(Bucket=locked, Key="record", Body=b"x")["VersionId"]
    assert settled(s3, locked, "record") == "COMPLETED"
    s3.put_object_legal_hold(Bucket=locked, Key="record", LegalHold={"Status": "ON"})
    until = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    s3.put_object_retention(Bucket=locked, Key="record", Retention={"Mode": "GOVERNANCE", "RetainUntilDate": until})

    def locked_alike() -> bool:
        replica = s3.head_object(Bucket=target, Key="record", VersionId=version)
        return (replica.get("ObjectLockLegalHoldStatus"), replica.get("ObjectLockMode"),
                replica.get("ObjectLockRetainUntilDate")) == ("ON", "GOVERNANCE", until)
    eventually(locked_alike, "the legal hold and retention replicated")
    assert settled(s3, locked, "record") == "COMPLETED"
    with pytest.raises(ClientError) as err:
        s3.delete_object(Bucket=target, Key="record", VersionId=version)
    assert code(err) == "AccessDenied"
    s3.put_object_legal_hold(Bucket=locked, Key="record", LegalHold={"Status": "OFF"})
    eventually(lambda: s3.get_object_legal_hold(Bucket=target, Key="record", VersionId=version)["LegalHold"]
               ["Status"] == "OFF", "the legal hold's release replicated")


def test_a_tag_change_fails_without_replicate_tags(cloud: MinicloudServer, s3: Any, source: str, dest: str) -> None:
    no_tags = make_role(cloud, ["s3:GetObjectVersionForReplication", "s3:ReplicateObject", "s3:ReplicateDelete"])
    configure(s3, source, no_tags, rule(dest))
    version = s3.put_object(Bucket=source, Key="plain", Body=b"x")["VersionId"]
    assert settled(s3, source, "plain") == "COMPLETED"
    s3.put_object_acl(Bucket=source, Key="plain", ACL="public-read")  # (s3:ReplicateObject suffices)
    eventually(lambda: public_read(s3, dest, "plain", version), "the ACL replicated")
    assert settled(s3, source, "plain") == "COMPLETED"
    s3.put_object_tagging(Bucket=source, Key="plain", Tagging={"TagSet": [{"Key": "a", "Value": "b"}]})
    assert settled(s3, source, "plain") == "FAILED"
    assert tag_set(s3, dest, "plain", version) == {}


def test_replica_modifications_replicate_a_replicas_changes_back(s3: Any, source: str, dest: str,
                                                                 role: str) -> None:
    both_ways = {"SourceSelectionCriteria": {"ReplicaModifications": {"Status": "Enabled"}}}
    configure(s3, source, role, rule(dest, **both_ways))
    configure(s3, dest, role, rule(source))  # two-way, but without ReplicaModifications at first
    version = s3.put_object(Bucket=source, Key="shared", Body=b"x")["VersionId"]
    assert settled(s3, source, "shared") == "COMPLETED"
    original = s3.head_object(Bucket=source, Key="shared")
    s3.put_object_tagging(Bucket=dest, Key="shared", Tagging={"TagSet": [{"Key": "local", "Value": "1"}]})
    assert replication_status(s3, dest, "shared") == "REPLICA"  # nothing to send: the change stays there
    s3.put_object(Bucket=source, Key="later", Body=b"y")  # (replicated after anything pending before it)
    assert settled(s3, source, "later") == "COMPLETED"
    assert tag_set(s3, source, "shared", version) == {}
    configure(s3, dest, role, rule(source, **both_ways))
    s3.put_object_tagging(Bucket=dest, Key="shared", Tagging={"TagSet": [{"Key": "edited", "Value": "on-b"}]})
    eventually(lambda: tag_set(s3, source, "shared", version) == {"edited": "on-b"}, "the replica's tags sent back")
    eventually(lambda: replication_status(s3, dest, "shared") == "REPLICA", "the replica settled")
    # the source version changed in place, and the change made by replication went no further
    head = s3.head_object(Bucket=source, Key="shared")
    assert head["ReplicationStatus"] == "COMPLETED" and head["LastModified"] == original["LastModified"]
    assert [v for v in version_ids(s3, source) if v[0] == "shared"] == [("shared", version, False)]
    assert version_ids(s3, source) == version_ids(s3, dest)
    # an ACL change on the replica, and a change on the source again, each way once
    s3.put_object_acl(Bucket=dest, Key="shared", ACL="public-read")
    eventually(lambda: public_read(s3, source, "shared", version), "the replica's ACL sent back")
    s3.put_object_tagging(Bucket=source, Key="shared", Tagging={"TagSet": [{"Key": "edited", "Value": "on-a"}]})
    eventually(lambda: tag_set(s3, dest, "shared", version) == {"edited": "on-a"}, "the source's tags sent on")
    assert settled(s3, source, "shared") == "COMPLETED"
    eventually(lambda: replication_status(s3, dest, "shared") == "REPLICA", "the replica settled")
    assert tag_set(s3, source, "shared", version) == {"edited": "on-a"}


def test_a_metadata_change_survives_a_crash(fresh_server: MinicloudServer) -> None:
    """A tag change made while no controller runs is recorded with the change; the server is
    killed (-9); the next start replicates it."""
    fresh_server.start()
    s3 = fresh_server.client("s3")
    role = make_role(fresh_server, ["s3:*"])
    source, dest = versioned(s3), versioned(s3)
    configure(s3, source, role, rule(dest))
    version = s3.put_object(Bucket=source, Key="k", Body=b"x")["VersionId"]
    assert settled(s3, source, "k") == "COMPLETED"
    fresh_server.stop()
    fresh_server.env["MINICLOUD_CONTROLLERS"] = "0"
    fresh_server.start()
    s3 = fresh_server.client("s3")
    s3.put_object_tagging(Bucket=source, Key="k", Tagging={"TagSet": [{"Key": "after", "Value": "crash"}]})
    assert replication_status(s3, source, "k") == "PENDING"
    fresh_server.kill()
    fresh_server.env["MINICLOUD_CONTROLLERS"] = "1"
    fresh_server.start()
    s3 = fresh_server.client("s3")
    assert settled(s3, source, "k") == "COMPLETED"
    assert tag_set(s3, dest, "k", version) == {"after": "crash"}
