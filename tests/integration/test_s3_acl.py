"""S3 ACLs, object ownership controls and the public access block against a real
``minicloud up``: boto3 for the configuration, unsigned HTTP requests for anonymous access."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.aws import code
from tests.support.server import Keys, MinicloudServer

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"


@pytest.fixture
def s3(server: MinicloudServer) -> Any:
    return server.client("s3")


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"acl-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def anonymous_get(server: MinicloudServer, path: str) -> int:
    try:
        with urllib.request.urlopen(f"{server.endpoint}/{path}", timeout=10) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_public_read_object_is_readable_unsigned(server: MinicloudServer, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="public.txt", Body=b"hello", ACL="public-read")
    s3.put_object(Bucket=bucket, Key="private.txt", Body=b"secret")
    assert anonymous_get(server, f"{bucket}/public.txt") == 200
    assert anonymous_get(server, f"{bucket}/private.txt") == 403
    assert anonymous_get(server, bucket) == 403  # listing needs READ on the bucket
    grants = s3.get_object_acl(Bucket=bucket, Key="public.txt")["Grants"]
    assert {"Grantee": {"Type": "Group", "URI": ALL_USERS}, "Permission": "READ"} in grants
    assert any(g["Permission"] == "FULL_CONTROL" and g["Grantee"]["Type"] == "CanonicalUser" for g in grants)
    s3.put_object_acl(Bucket=bucket, Key="public.txt", ACL="private")
    assert anonymous_get(server, f"{bucket}/public.txt") == 403
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read")
    assert anonymous_get(server, bucket) == 200
    acl = s3.get_bucket_acl(Bucket=bucket)
    assert acl["Owner"]["ID"] and len(acl["Grants"]) == 2


def test_explicit_grants(server: MinicloudServer, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    owner = s3.get_object_acl(Bucket=bucket, Key="k")["Owner"]
    s3.put_object_acl(Bucket=bucket, Key="k", AccessControlPolicy={
        "Owner": owner,
        "Grants": [{"Grantee": {"Type": "CanonicalUser", "ID": owner["ID"]}, "Permission": "FULL_CONTROL"},
                   {"Grantee": {"Type": "Group", "URI": ALL_USERS}, "Permission": "READ"}]})
    assert anonymous_get(server, f"{bucket}/k") == 200
    s3.put_object_acl(Bucket=bucket, Key="k", GrantRead=f'id="{owner["ID"]}"')
    assert anonymous_get(server, f"{bucket}/k") == 403
    with pytest.raises(ClientError) as err:
        s3.put_object_acl(Bucket=bucket, Key="k", GrantRead='emailAddress="nobody@example.com"')
    assert code(err) == "UnresolvableGrantByEmailAddress"
    with pytest.raises(ClientError) as err:
        s3.put_object_acl(Bucket=bucket, Key="k", ACL="public-read", GrantRead=f'id="{owner["ID"]}"')
    assert code(err) == "InvalidRequest"


def test_bucket_owner_enforced_disables_acls(server: MinicloudServer, s3: Any) -> None:
    name = f"own-{uuid.uuid4().hex[:12]}"
    with pytest.raises(ClientError) as err:
        s3.create_bucket(Bucket=name, ObjectOwnership="BucketOwnerEnforced", ACL="public-read")
    assert code(err) == "InvalidBucketAclWithObjectOwnership"
    s3.create_bucket(Bucket=name, ObjectOwnership="BucketOwnerEnforced")
    rules = s3.get_bucket_ownership_controls(Bucket=name)["OwnershipControls"]["Rules"]
    assert rules == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=name, Key="k", Body=b"x", ACL="public-read")
    assert code(err) == "AccessControlListNotSupported"
    s3.put_object(Bucket=name, Key="k", Body=b"x", ACL="bucket-owner-full-control")
    with pytest.raises(ClientError) as err:
        s3.put_bucket_acl(Bucket=name, ACL="public-read")
    assert code(err) == "AccessControlListNotSupported"
    s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls={"Rules": [{"ObjectOwnership": "ObjectWriter"}]})
    s3.put_object_acl(Bucket=name, Key="k", ACL="public-read")
    assert anonymous_get(server, f"{name}/k") == 200
    s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls={
        "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
    assert anonymous_get(server, f"{name}/k") == 403  # ACLs no longer count
    s3.delete_bucket_ownership_controls(Bucket=name)
    with pytest.raises(ClientError) as err:
        s3.get_bucket_ownership_controls(Bucket=name)
    assert code(err) == "OwnershipControlsNotFoundError"


def public_policy(bucket: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}]})


def test_public_access_block(server: MinicloudServer, s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as err:
        s3.get_public_access_block(Bucket=bucket)
    assert code(err) == "NoSuchPublicAccessBlockConfiguration"
    s3.put_object(Bucket=bucket, Key="acl-public", Body=b"x", ACL="public-read")
    s3.put_object(Bucket=bucket, Key="policy-public", Body=b"y")
    s3.put_bucket_policy(Bucket=bucket, Policy=public_policy(bucket))
    assert s3.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"] is True
    assert anonymous_get(server, f"{bucket}/policy-public") == 200
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    config = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert config == {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
                      "RestrictPublicBuckets": True}
    assert anonymous_get(server, f"{bucket}/acl-public") == 403
    assert anonymous_get(server, f"{bucket}/policy-public") == 403
    assert s3.get_object(Bucket=bucket, Key="policy-public")["Body"].read() == b"y"  # the owner still can
    with pytest.raises(ClientError) as err:
        s3.put_bucket_policy(Bucket=bucket, Policy=public_policy(bucket))
    assert code(err) == "AccessDenied"
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="new", Body=b"z", ACL="public-read")
    assert code(err) == "AccessDenied"
    s3.delete_public_access_block(Bucket=bucket)
    assert anonymous_get(server, f"{bucket}/acl-public") == 200


def test_bucket_policy_condition_keys(server: MinicloudServer, s3: Any, bucket: str) -> None:
    """Bucket policies see S3's request keys (s3:x-amz-acl, s3:RequestObjectTag/*) and the object's
    own tags (s3:ExistingObjectTag/*)."""
    iam = server.client("iam")
    name = f"cond-{uuid.uuid4().hex[:8]}"
    user_arn = iam.create_user(UserName=name)["User"]["Arn"]
    created = iam.create_access_key(UserName=name)["AccessKey"]
    user = server.client("s3", Keys(created["AccessKeyId"], created["SecretAccessKey"]))
    s3.put_object(Bucket=bucket, Key="open", Body=b"o", Tagging="class=public")
    s3.put_object(Bucket=bucket, Key="closed", Body=b"c", Tagging="class=secret")
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": user_arn}, "Action": "s3:PutObject",
         "Resource": f"arn:aws:s3:::{bucket}/*",
         "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control",
                                        "s3:RequestObjectTag/team": "blue"}}},
        {"Effect": "Allow", "Principal": {"AWS": user_arn}, "Action": "s3:GetObject",
         "Resource": f"arn:aws:s3:::{bucket}/*",
         "Condition": {"StringEquals": {"s3:ExistingObjectTag/class": "public"}}}]}))
    user.put_object(Bucket=bucket, Key="u1", Body=b"x", ACL="bucket-owner-full-control", Tagging="team=blue")
    for kwargs in ({"Tagging": "team=blue"}, {"ACL": "bucket-owner-full-control", "Tagging": "team=red"}):
        with pytest.raises(ClientError) as err:
            user.put_object(Bucket=bucket, Key="u2", Body=b"x", **kwargs)
        assert code(err) == "AccessDenied"
    assert user.get_object(Bucket=bucket, Key="open")["Body"].read() == b"o"
    with pytest.raises(ClientError) as err:
        user.get_object(Bucket=bucket, Key="closed")
    assert code(err) == "AccessDenied"


def test_an_object_another_account_wrote_answers_to_its_own_acl(server: MinicloudServer, s3: Any, bucket: str) -> None:
    """S3's object context: with ACLs on, an object keeps its writer as owner, and neither the bucket
    owner's account nor the bucket policy reads it or its ACL; only the object's ACL grants that."""
    from tests.integration.test_s3 import other_account

    other = other_account(server)
    other_owner = other.list_buckets()["Owner"]
    other_id, other_account_id = other_owner["ID"], other_owner["DisplayName"]
    mine = s3.get_bucket_acl(Bucket=bucket)["Owner"]["ID"]
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": other_account_id}, "Action": "s3:PutObject",
         "Resource": f"arn:aws:s3:::{bucket}/*"},
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}]}))
    s3.put_object(Bucket=bucket, Key="mine", Body=b"bucket owner's")
    other.put_object(Bucket=bucket, Key="theirs", Body=b"writer's")
    other.put_object(Bucket=bucket, Key="readable", Body=b"read grant", GrantRead=f'id="{mine}"')
    other.put_object(Bucket=bucket, Key="given", Body=b"full control", ACL="bucket-owner-full-control")

    def denied(call: Any, **kw: Any) -> None:
        with pytest.raises(ClientError) as err:
            call(Bucket=bucket, **kw)
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403

    denied(s3.get_object, Key="theirs")
    denied(s3.head_object, Key="theirs")
    denied(s3.get_object_acl, Key="theirs")
    denied(s3.put_object_acl, Key="theirs", ACL="public-read")
    denied(s3.get_object_tagging, Key="theirs")
    denied(s3.put_object_tagging, Key="theirs", Tagging={"TagSet": [{"Key": "a", "Value": "b"}]})
    denied(s3.get_object_attributes, Key="theirs", ObjectAttributes=["ETag", "ObjectSize"])
    denied(s3.copy_object, Key="copied", CopySource={"Bucket": bucket, "Key": "theirs"})
    assert s3.get_object(Bucket=bucket, Key="readable")["Body"].read() == b"read grant"
    denied(s3.get_object_acl, Key="readable")  # READ is not READ_ACP
    assert s3.get_object(Bucket=bucket, Key="given")["Body"].read() == b"full control"
    assert s3.get_object_acl(Bucket=bucket, Key="given")["Owner"]["ID"] == other_id
    # The bucket policy's public read covers the bucket owner's objects only.
    assert anonymous_get(server, f"{bucket}/mine") == 200
    assert anonymous_get(server, f"{bucket}/theirs") == 403
    # The writer keeps its rights; the bucket owner may still list and delete.
    assert other.get_object(Bucket=bucket, Key="theirs")["Body"].read() == b"writer's"
    assert other.get_object_acl(Bucket=bucket, Key="theirs")["Owner"]["ID"] == other_id
    other.put_object_acl(Bucket=bucket, Key="theirs", GrantRead=f'id="{mine}"')
    assert s3.get_object(Bucket=bucket, Key="theirs")["Body"].read() == b"writer's"
    assert {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]} == {"mine", "theirs", "readable", "given"}
    s3.delete_object(Bucket=bucket, Key="readable")
    # With BucketOwnerEnforced the bucket owner owns every object, whoever wrote it.
    s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={
        "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
    other.put_object(Bucket=bucket, Key="later", Body=b"enforced")
    assert s3.get_object(Bucket=bucket, Key="later")["Body"].read() == b"enforced"


def test_the_object_context_reads_the_version_the_operation_reads(server: MinicloudServer, s3: Any,
                                                                   bucket: str) -> None:
    """On a versioned bucket, another account's private version stays private whichever way it is
    named: by a versionId given twice (the operation reads the first), or as a copy source."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from tests.integration.test_s3 import other_account

    other = other_account(server)
    other_account_id = other.list_buckets()["Owner"]["DisplayName"]
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": other_account_id}, "Action": "s3:PutObject",
         "Resource": f"arn:aws:s3:::{bucket}/*"}]}))
    theirs = other.put_object(Bucket=bucket, Key="k", Body=b"writer's secret")["VersionId"]
    mine = s3.put_object(Bucket=bucket, Key="k", Body=b"bucket owner's", ACL="public-read")["VersionId"]
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"bucket owner's"

    def status(url: str, keys: Keys | None) -> int:
        request = AWSRequest(method="GET", url=url)
        if keys is not None:
            S3SigV4Auth(Credentials(keys.access_key_id, keys.secret_access_key), "s3", "us-east-1").add_auth(request)
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=dict(request.headers)), timeout=10) as r:
                r.read()
                return int(r.status)
        except urllib.error.HTTPError as error:
            return int(error.code)

    url = f"{server.endpoint}/{bucket}/k?versionId="
    assert status(url + mine, server.root) == 200
    assert status(url + theirs, server.root) == 403
    assert status(f"{url}{theirs}&versionId={mine}", server.root) == 403
    assert status(f"{url}{theirs}&versionId={mine}", None) == 403  # (mine is public-read)
    assert status(f"{url}{mine}&versionId={theirs}", None) == 200
    with pytest.raises(ClientError) as err:
        s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "k", "VersionId": theirs})
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    upload = s3.create_multipart_upload(Bucket=bucket, Key="parts")["UploadId"]
    with pytest.raises(ClientError) as err:
        s3.upload_part_copy(Bucket=bucket, Key="parts", UploadId=upload, PartNumber=1,
                            CopySource={"Bucket": bucket, "Key": "k", "VersionId": theirs})
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "k", "VersionId": mine})
    assert other.get_object(Bucket=bucket, Key="k", VersionId=theirs)["Body"].read() == b"writer's secret"


def test_the_objects_owner_account_alone_authorizes_its_object_in_another_accounts_bucket(
        server: MinicloudServer, s3: Any, bucket: str) -> None:
    """S3's three contexts for an object another account wrote and owns: that account's IAM policies
    (user context) and the object's owner (object context) decide who reads it and its ACL; the
    bucket's owner only through an explicit deny in its bucket policy (bucket context). Writing,
    deleting, and changing its tags, retention or legal hold still need the bucket owner's allow."""
    from tests.integration.test_s3 import other_account_keys

    admin = other_account_keys(server)
    other = server.client("s3", keys=admin)
    other_account_id = other.list_buckets()["Owner"]["DisplayName"]
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": other_account_id}, "Action": "s3:PutObject",
         "Resource": f"arn:aws:s3:::{bucket}/*"},
        {"Effect": "Allow", "Principal": {"AWS": other_account_id}, "Action": "s3:PutObjectTagging",
         "Resource": f"arn:aws:s3:::{bucket}/tagged"},
        {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObjectTagging",
         "Resource": f"arn:aws:s3:::{bucket}/denied"}]}))
    for key in ("theirs", "tagged", "denied"):
        other.put_object(Bucket=bucket, Key=key, Body=b"writer's")
    tags = {"TagSet": [{"Key": "team", "Value": "b"}]}

    def refused(call: Any) -> None:
        with pytest.raises(ClientError) as err:
            call()
        assert code(err) == "AccessDenied"

    # The writer's role (administrator of its account), in the bucket policy's silence.
    assert other.get_object(Bucket=bucket, Key="theirs")["Body"].read() == b"writer's"
    assert other.get_object_tagging(Bucket=bucket, Key="theirs")["TagSet"] == []
    attributes = other.get_object_attributes(Bucket=bucket, Key="theirs", ObjectAttributes=["ObjectSize"])
    assert attributes["ObjectSize"] == len(b"writer's")
    other.put_object_acl(Bucket=bucket, Key="theirs", ACL="private")
    # Changing the tags takes the bucket owner's allow, which "tagged" has.
    refused(lambda: other.put_object_tagging(Bucket=bucket, Key="theirs", Tagging=tags))
    other.put_object_tagging(Bucket=bucket, Key="tagged", Tagging=tags)
    assert other.get_object_tagging(Bucket=bucket, Key="tagged")["TagSet"] == tags["TagSet"]
    # The bucket owner's explicit deny holds.
    refused(lambda: other.get_object_tagging(Bucket=bucket, Key="denied"))
    # A user of the writer's account gets only what its own policies allow, their conditions
    # on the request's global keys included.
    iam = server.client("iam", keys=admin)
    iam.create_user(UserName="reader")
    iam.put_user_policy(UserName="reader", PolicyName="tags", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObjectTagging", "Resource": "*",
                                                "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}}]}))
    key = iam.create_access_key(UserName="reader")["AccessKey"]
    reader = server.client("s3", keys=Keys(key["AccessKeyId"], key["SecretAccessKey"]))
    assert reader.get_object_tagging(Bucket=bucket, Key="tagged")["TagSet"] == tags["TagSet"]
    refused(lambda: reader.get_object(Bucket=bucket, Key="tagged"))
    # Deleting is the bucket's: its policy does not allow the writer's account to.
    refused(lambda: other.delete_object(Bucket=bucket, Key="theirs"))
    # Once the bucket owner's own object replaces it, the writer's account has no say over that key.
    s3.put_object(Bucket=bucket, Key="theirs", Body=b"bucket owner's")
    refused(lambda: other.get_object_tagging(Bucket=bucket, Key="theirs"))


def test_restricted_public_buckets_keep_the_bucket_owners_denials(server: MinicloudServer, s3: Any,
                                                                  bucket: str) -> None:
    """RestrictPublicBuckets blocks what a public policy grants other accounts, never its denials."""
    from tests.integration.test_s3 import other_account

    other = other_account(server)
    other_account_id = other.list_buckets()["Owner"]["DisplayName"]
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/*"},
        {"Effect": "Deny", "Principal": {"AWS": other_account_id},
         "Action": ["s3:GetObject", "s3:GetObjectTagging"], "Resource": f"arn:aws:s3:::{bucket}/*"}]}))
    other.put_object(Bucket=bucket, Key="theirs", Body=b"writer's")
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": False, "IgnorePublicAcls": False, "BlockPublicPolicy": False,
        "RestrictPublicBuckets": True})
    for call in (lambda: other.get_object(Bucket=bucket, Key="theirs"),
                 lambda: other.get_object_tagging(Bucket=bucket, Key="theirs")):
        with pytest.raises(ClientError) as err:
            call()
        assert code(err) == "AccessDenied"
    with pytest.raises(ClientError) as err:  # and the public grant reaches no other account
        other.put_object(Bucket=bucket, Key="again", Body=b"x")
    assert code(err) == "AccessDenied"


def test_the_object_owner_cannot_lock_its_object_in_another_accounts_bucket(server: MinicloudServer,
                                                                             s3: Any) -> None:
    from tests.integration.test_s3 import other_account

    bucket = f"acl-lock-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={
        "Rules": [{"ObjectOwnership": "ObjectWriter"}]})
    other = other_account(server)
    other_account_id = other.list_buckets()["Owner"]["DisplayName"]
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": other_account_id}, "Action": "s3:PutObject",
         "Resource": f"arn:aws:s3:::{bucket}/*"}]}))
    version = other.put_object(Bucket=bucket, Key="theirs", Body=b"writer's")["VersionId"]
    for call in (lambda: other.put_object_legal_hold(Bucket=bucket, Key="theirs", LegalHold={"Status": "ON"}),
                 lambda: other.put_object_retention(Bucket=bucket, Key="theirs", Retention={
                     "Mode": "COMPLIANCE", "RetainUntilDate": "2099-01-01T00:00:00Z"})):
        with pytest.raises(ClientError) as err:
            call()
        assert code(err) == "AccessDenied"
    s3.delete_object(Bucket=bucket, Key="theirs", VersionId=version)  # the bucket owner can still empty it


def test_iam_conditions_on_existing_object_tags_hold_without_a_bucket_policy(server: MinicloudServer, s3: Any,
                                                                           bucket: str) -> None:
    iam = server.client("iam")
    name = f"tagged-{uuid.uuid4().hex[:6]}"
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps({"Version": "2012-10-17",
                                                                               "Statement": [
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "s3:GetObject", "Resource": "*",
         "Condition": {"StringEquals": {"s3:ExistingObjectTag/secret": "yes"}}}]}))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    user = server.client("s3", keys=Keys(key["AccessKeyId"], key["SecretAccessKey"]))
    s3.put_object(Bucket=bucket, Key="open", Body=b"o", Tagging="secret=no")
    s3.put_object(Bucket=bucket, Key="closed", Body=b"c", Tagging="secret=yes")
    assert user.get_object(Bucket=bucket, Key="open")["Body"].read() == b"o"
    with pytest.raises(ClientError) as err:
        user.get_object(Bucket=bucket, Key="closed")
    assert code(err) == "AccessDenied"


def test_get_object_attributes_needs_get_object_too(server: MinicloudServer, s3: Any, bucket: str) -> None:
    iam = server.client("iam")
    name = f"attrs-{uuid.uuid4().hex[:6]}"
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps({"Version": "2012-10-17",
                                                                               "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObjectAttributes", "Resource": "*"}]}))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    user = server.client("s3", keys=Keys(key["AccessKeyId"], key["SecretAccessKey"]))
    s3.put_object(Bucket=bucket, Key="k", Body=b"data")
    with pytest.raises(ClientError) as err:
        user.get_object_attributes(Bucket=bucket, Key="k", ObjectAttributes=["ETag"])
    assert code(err) == "AccessDenied"
    iam.put_user_policy(UserName=name, PolicyName="q", PolicyDocument=json.dumps({"Version": "2012-10-17",
                                                                               "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}))
    assert user.get_object_attributes(Bucket=bucket, Key="k", ObjectAttributes=["ObjectSize"])["ObjectSize"] == 4


def test_restricted_public_buckets_tell_no_other_account_which_keys_exist(server: MinicloudServer, s3: Any,
                                                                          bucket: str) -> None:
    """A public s3:ListBucket grant, blocked by RestrictPublicBuckets, no longer turns another
    account's or an anonymous caller's GET of a missing key into a 404 (NoSuchKey) instead of a 403."""
    from tests.integration.test_s3 import other_account

    other = other_account(server)
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": ["s3:ListBucket", "s3:GetObject"],
         "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]}]}))
    s3.put_object(Bucket=bucket, Key="there", Body=b"x")
    assert anonymous_get(server, f"{bucket}/missing") == 404  # public: S3 says NoSuchKey
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": False, "IgnorePublicAcls": False, "BlockPublicPolicy": False,
        "RestrictPublicBuckets": True})
    for key in ("there", "missing"):
        assert anonymous_get(server, f"{bucket}/{key}") == 403
        with pytest.raises(ClientError) as err:
            other.get_object(Bucket=bucket, Key=key)
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="missing")  # the owner's account still learns it
    assert code(err) == "NoSuchKey"
