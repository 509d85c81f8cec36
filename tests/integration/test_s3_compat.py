"""S3 behaviours found through the ceph/s3-tests compatibility run (compat/s3tests), each checked
here with boto3 or raw HTTP against a real ``minicloud up`` so our suite never needs s3-tests."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
import uuid
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError

from minicloud.services.s3.names import canonical_id
from tests.support.aws import code, status
from tests.support.server import Keys, MinicloudServer


def _name(prefix: str = "compat") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def s3(server: MinicloudServer) -> Any:
    return server.client("s3")


@pytest.fixture
def s3v2(server: MinicloudServer) -> Any:
    """A client signing with S3's legacy SigV2 (botocore's ``s3`` signer)."""
    return server.client("s3", signature_version="s3")


@pytest.fixture
def bucket(s3: Any) -> str:
    name = _name()
    s3.create_bucket(Bucket=name)
    return name


def _with_headers(client: Any, operation: str, headers: dict[str, str]) -> None:
    """Set headers before the request is signed (as a client sending them would)."""
    def update(**kw: Any) -> None:
        kw["params"]["headers"].update(headers)
    client.meta.events.register(f"before-call.s3.{operation}", update)


# -- SigV2 ------------------------------------------------------------------------------------------

def test_sigv2_bucket_requests_signed_with_trailing_slash(s3v2: Any) -> None:
    """botocore signs a path-style bucket as ``/bucket/``: CreateBucket and ListObjects verify."""
    name = _name()
    s3v2.create_bucket(Bucket=name)
    assert s3v2.list_objects(Bucket=name)["Name"] == name
    s3v2.delete_bucket(Bucket=name)


@pytest.mark.parametrize("value", ["Bad Date", "", "Tue, 07 Jul 1950 21:53:04 GMT"])
def test_sigv2_invalid_amz_date_is_access_denied(s3v2: Any, bucket: str, value: str) -> None:
    _with_headers(s3v2, "PutObject", {"x-amz-date": value})
    with pytest.raises(ClientError) as err:
        s3v2.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert (status(err), code(err)) == (403, "AccessDenied")


def test_sigv2_old_amz_date_is_skewed(s3v2: Any, bucket: str) -> None:
    _with_headers(s3v2, "PutObject", {"x-amz-date": "Tue, 07 Jul 2010 21:53:04 GMT"})
    with pytest.raises(ClientError) as err:
        s3v2.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert (status(err), code(err)) == (403, "RequestTimeTooSkewed")




# -- ACLs -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def other_account(server: MinicloudServer) -> tuple[str, str, Any]:
    """Another account: (account id, e-mail, an S3 client of an admin IAM user of it)."""
    email = f"{_name('acl')}@example.com"
    account_id = server.client("organizations").create_account(
        Email=email, AccountName="acl-other")["CreateAccountStatus"]["AccountId"]
    iam = server.client("iam")
    boot = _name("boot")
    iam.create_user(UserName=boot)
    iam.attach_user_policy(UserName=boot, PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    key = iam.create_access_key(UserName=boot)["AccessKey"]
    creds = server.client("sts", keys=Keys(key["AccessKeyId"], key["SecretAccessKey"])).assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole", RoleSessionName="acl",
    )["Credentials"]
    other_iam = server.client("iam", keys=Keys(creds["AccessKeyId"], creds["SecretAccessKey"],
                                               creds["SessionToken"]))
    other_iam.create_user(UserName="admin")
    other_iam.attach_user_policy(UserName="admin", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    admin = other_iam.create_access_key(UserName="admin")["AccessKey"]
    return account_id, email, server.client("s3", keys=Keys(admin["AccessKeyId"], admin["SecretAccessKey"]))


def test_grant_to_another_account_shows_its_display_name_and_lets_its_admin_user_read(
        s3: Any, bucket: str, other_account: tuple[str, str, Any]) -> None:
    account_id, _, other_s3 = other_account
    with pytest.raises(ClientError) as err:
        other_s3.head_bucket(Bucket=bucket)
    assert status(err) == 403
    acl = s3.get_bucket_acl(Bucket=bucket)
    grantee = {"Type": "CanonicalUser", "ID": canonical_id(account_id)}
    grant: dict[str, Any] = {"Grantee": grantee, "Permission": "READ"}
    s3.put_bucket_acl(Bucket=bucket, AccessControlPolicy={"Owner": acl["Owner"], "Grants": [*acl["Grants"], grant]})
    grants = s3.get_bucket_acl(Bucket=bucket)["Grants"]
    assert {"Grantee": {**grantee, "DisplayName": account_id}, "Permission": "READ"} in grants
    other_s3.head_bucket(Bucket=bucket)  # an IAM user whose own policy allows it, through the ACL grant
    other_s3.list_objects(Bucket=bucket)
    with pytest.raises(ClientError) as err:
        other_s3.get_bucket_acl(Bucket=bucket)  # READ does not give READ_ACP
    assert status(err) == 403


def test_grant_by_email_becomes_the_accounts_canonical_user(
        s3: Any, bucket: str, other_account: tuple[str, str, Any]) -> None:
    account_id, email, _ = other_account
    acl = s3.get_bucket_acl(Bucket=bucket)
    grant = {"Grantee": {"Type": "AmazonCustomerByEmail", "EmailAddress": email}, "Permission": "WRITE"}
    s3.put_bucket_acl(Bucket=bucket, AccessControlPolicy={"Owner": acl["Owner"], "Grants": [*acl["Grants"], grant]})
    grants = s3.get_bucket_acl(Bucket=bucket)["Grants"]
    assert {"Grantee": {"Type": "CanonicalUser", "ID": canonical_id(account_id), "DisplayName": account_id},
            "Permission": "WRITE"} in grants


def test_grant_to_an_unknown_canonical_id_is_invalid_argument(s3: Any, bucket: str) -> None:
    acl = s3.get_bucket_acl(Bucket=bucket)
    grant = {"Grantee": {"Type": "CanonicalUser", "ID": "_foo"}, "Permission": "FULL_CONTROL"}
    with pytest.raises(ClientError) as err:
        s3.put_bucket_acl(Bucket=bucket, AccessControlPolicy={"Owner": acl["Owner"], "Grants": [grant]})
    assert (status(err), code(err)) == (400, "InvalidArgument")


def test_canned_acl_lists_group_grants_before_the_owner(s3: Any) -> None:
    name = _name()
    s3.create_bucket(Bucket=name, ACL="public-read-write")
    grants = s3.get_bucket_acl(Bucket=name)["Grants"]
    assert [(g["Grantee"]["Type"], g["Permission"]) for g in grants] == [
        ("Group", "READ"), ("Group", "WRITE"), ("CanonicalUser", "FULL_CONTROL")]


# -- answers of errors ------------------------------------------------------------------------------

def test_delete_marker_answers_say_so_in_headers(s3: Any, bucket: str) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    marker = s3.delete_object(Bucket=bucket, Key="k")["VersionId"]
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket=bucket, Key="k")
    headers = err.value.response["ResponseMetadata"]["HTTPHeaders"]
    assert (status(err), headers.get("x-amz-delete-marker"), headers.get("x-amz-version-id")) == (404, "true", marker)
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="k", VersionId=marker)
    headers = err.value.response["ResponseMetadata"]["HTTPHeaders"]
    assert (status(err), headers.get("x-amz-delete-marker")) == (405, "true")


def test_cors_headers_on_an_error_answer(server: MinicloudServer, s3: Any, bucket: str) -> None:
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [
        {"AllowedMethods": ["GET"], "AllowedOrigins": ["*.example"]}]})
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read")
    request = urllib.request.Request(f"{server.endpoint}/{bucket}/missing", headers={"Origin": "a.example"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=10)
    # anonymous, but the bucket's ACL lets anyone list it: 404, not 403; and the CORS headers
    assert err.value.code == 404
    assert err.value.headers["Access-Control-Allow-Origin"] == "a.example"
    assert err.value.headers["Access-Control-Allow-Methods"] == "GET"


def test_expected_bucket_owner(server: MinicloudServer, s3: Any, bucket: str) -> None:
    s3.list_objects(Bucket=bucket, ExpectedBucketOwner=server.account_id)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", ExpectedBucketOwner=server.account_id)
    for wrong in ("111122223333", canonical_id(server.account_id) + "foo"):
        with pytest.raises(ClientError) as err:
            s3.list_objects(Bucket=bucket, ExpectedBucketOwner=wrong)
        assert (status(err), code(err)) == (403, "AccessDenied")


def test_another_accounts_user_aborts_its_upload_in_a_public_read_write_bucket(
        s3: Any, bucket: str, other_account: tuple[str, str, Any]) -> None:
    _, _, other_s3 = other_account
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read-write")
    upload = other_s3.create_multipart_upload(Bucket=bucket, Key="theirs")["UploadId"]
    assert [u["Key"] for u in other_s3.list_multipart_uploads(Bucket=bucket)["Uploads"]] == ["theirs"]
    other_s3.abort_multipart_upload(Bucket=bucket, Key="theirs", UploadId=upload)
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)


# -- conditional deletes ----------------------------------------------------------------------------

def test_conditional_delete_object(s3: Any, bucket: str) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    assert s3.delete_object(Bucket=bucket, Key="k", IfMatch="bad")["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert "Versions" not in s3.list_object_versions(Bucket=bucket)  # nothing there: no delete marker either
    put = s3.put_object(Bucket=bucket, Key="k", Body=b"four")
    head = s3.head_object(Bucket=bucket, Key="k")
    for wrong in ({"IfMatch": '"0123"'}, {"IfMatchSize": 5},
                  {"IfMatchLastModifiedTime": head["LastModified"].replace(year=2001)}):
        with pytest.raises(ClientError) as err:
            s3.delete_object(Bucket=bucket, Key="k", **wrong)
        assert (status(err), code(err)) == (412, "PreconditionFailed")
    done = s3.delete_object(Bucket=bucket, Key="k", IfMatch=put["ETag"], IfMatchSize=4,
                            IfMatchLastModifiedTime=head["LastModified"])
    assert done["DeleteMarker"] is True
    with pytest.raises(ClientError) as err:  # the current version is now a delete marker: no ETag matches
        s3.delete_object(Bucket=bucket, Key="k", IfMatch=put["ETag"])
    assert status(err) == 412
    s3.delete_object(Bucket=bucket, Key="k", IfMatch="*")  # but "*" does
    s3.delete_object(Bucket=bucket, Key="k", VersionId=put["VersionId"], IfMatch=put["ETag"])


def test_conditional_delete_objects(s3: Any, bucket: str) -> None:
    put = s3.put_object(Bucket=bucket, Key="k", Body=b"four")
    answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "k", "ETag": '"bad"'},
                                                                  {"Key": "k", "Size": 3}]})
    assert [e["Code"] for e in answer["Errors"]] == ["PreconditionFailed", "PreconditionFailed"]
    answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "k", "ETag": put["ETag"], "Size": 4}]})
    assert [d["Key"] for d in answer["Deleted"]] == ["k"] and "Errors" not in answer
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


# -- small answers ----------------------------------------------------------------------------------

def test_list_objects_v1_echoes_prefix_unencoded(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="a\nb", Body=b"")
    answer = s3.list_objects(Bucket=bucket, Prefix="a\n")  # boto3 asks for encoding-type=url
    assert answer["Prefix"] == "a\n" and [c["Key"] for c in answer["Contents"]] == ["a\nb"]
    assert s3.list_objects_v2(Bucket=bucket, Prefix="a\n")["Prefix"] == "a\n"  # v2 encodes it; boto3 decodes


def test_content_encoding_kept_as_given_without_aws_chunked(s3: Any, bucket: str) -> None:
    for given, stored in (("deflate, gzip", "deflate, gzip"), ("gzip, aws-chunked", "gzip"),
                          ("aws-chunked, deflate,gzip", "deflate, gzip")):
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", ContentEncoding=given)
        assert s3.head_object(Bucket=bucket, Key="k")["ContentEncoding"] == stored


def test_suspended_versioning_writes_name_no_version(s3: Any, bucket: str) -> None:
    assert "VersionId" not in s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    assert "VersionId" not in s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    upload = s3.create_multipart_upload(Bucket=bucket, Key="m")["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key="m", UploadId=upload, PartNumber=1, Body=b"x")["ETag"]
    done = s3.complete_multipart_upload(Bucket=bucket, Key="m", UploadId=upload,
                                        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert "VersionId" not in done
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    assert s3.put_object(Bucket=bucket, Key="k", Body=b"x")["VersionId"]


def test_missing_key_is_404_to_whom_a_policy_lets_list_its_prefix(
        s3: Any, bucket: str, other_account: tuple[str, str, Any]) -> None:
    _, _, other_s3 = other_account
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}",
        "Condition": {"StringLike": {"s3:prefix": "public/*"}}}]}))
    with pytest.raises(ClientError) as err:
        other_s3.head_object(Bucket=bucket, Key="public/object")
    assert status(err) == 404
    with pytest.raises(ClientError) as err:
        other_s3.head_object(Bucket=bucket, Key="private/object")
    assert status(err) == 403


def test_bucket_owner_enforced_refuses_a_private_acl_on_an_object_write(s3: Any) -> None:
    name = _name()
    s3.create_bucket(Bucket=name, ObjectOwnership="BucketOwnerEnforced", ACL="private")
    s3.put_object(Bucket=name, Key="k", Body=b"x", ACL="bucket-owner-full-control")
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=name, Key="k", Body=b"x", ACL="private")
    assert (status(err), code(err)) == (400, "AccessControlListNotSupported")


def test_put_bucket_policy_answers_204(s3: Any, bucket: str) -> None:
    statement = {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:GetObject",
                 "Resource": f"arn:aws:s3:::{bucket}/*"}
    policy = {"Version": "2012-10-17", "Statement": [statement]}
    answer = s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_object_attributes_of_an_sse_c_object_need_its_key(s3: Any, bucket: str) -> None:
    sse = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": "pO3upElrwuEXSoFwCfnZPdSsmt/xWeFa0N9KgDijwVs=",
           "SSECustomerKeyMD5": "DWygnHRtgiJ77HCm+1rvHw=="}
    s3.put_object(Bucket=bucket, Key="k", Body=b"x" * 10, **sse)
    with pytest.raises(ClientError) as err:
        s3.get_object_attributes(Bucket=bucket, Key="k", ObjectAttributes=["ObjectSize"])
    assert status(err) == 400
    assert s3.get_object_attributes(Bucket=bucket, Key="k", ObjectAttributes=["ObjectSize"], **sse)["ObjectSize"] == 10


def test_repeated_complete_multipart_upload_answers_the_checksum_again(s3: Any, bucket: str) -> None:
    upload = s3.create_multipart_upload(Bucket=bucket, Key="m", ChecksumAlgorithm="SHA256")["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key="m", UploadId=upload, PartNumber=1, Body=b"x", ChecksumAlgorithm="SHA256")
    parts = {"Parts": [{"PartNumber": 1, "ETag": part["ETag"], "ChecksumSHA256": part["ChecksumSHA256"]}]}
    first = s3.complete_multipart_upload(Bucket=bucket, Key="m", UploadId=upload, MultipartUpload=parts)
    again = s3.complete_multipart_upload(Bucket=bucket, Key="m", UploadId=upload, MultipartUpload=parts)
    assert (again["ETag"], again["ChecksumSHA256"]) == (first["ETag"], first["ChecksumSHA256"])


def test_bucket_owner_enforced_needs_an_owner_only_bucket_acl(s3: Any) -> None:
    name = _name()
    s3.create_bucket(Bucket=name, ACL="public-read")
    enforced = {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    with pytest.raises(ClientError) as err:
        s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=enforced)
    assert (status(err), code(err)) == (400, "InvalidBucketAclWithObjectOwnership")
    s3.put_bucket_acl(Bucket=name, ACL="private")
    s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=enforced)
    with pytest.raises(ClientError) as err:  # ACLs are off now: even private is refused
        s3.put_bucket_acl(Bucket=name, ACL="private")
    assert (status(err), code(err)) == (400, "AccessControlListNotSupported")


def test_a_refused_upload_waiting_for_100_continue_gets_no_100(server: MinicloudServer) -> None:
    """S3 answers a refusal (here: an unsigned PUT to a private bucket) before asking for the body."""
    server.client("s3").create_bucket(Bucket="expect-continue")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"PUT /expect-continue/key HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n"
                     b"Expect: 100-continue\r\n\r\n")
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 403 "), answer[:100]
    assert b"AccessDenied" in answer or b"connection: close" in answer


def test_an_allowed_upload_waiting_for_100_continue_gets_it(server: MinicloudServer) -> None:
    s3 = server.client("s3")
    s3.create_bucket(Bucket="expect-continue-ok")
    url = s3.generate_presigned_url("put_object", Params={"Bucket": "expect-continue-ok", "Key": "k"})
    target = urlsplit(url)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(f"PUT {target.path}?{target.query} HTTP/1.1\r\nHost: {target.netloc}\r\n".encode()
                     + b"Content-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        assert sock.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hello")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
    assert s3.get_object(Bucket="expect-continue-ok", Key="k")["Body"].read() == b"hello"


def _chunked_put(server: MinicloudServer, url: str) -> bytes:
    """``url`` PUT with plain chunked transfer coding (no Content-Length, no aws-chunked); the answer."""
    target = urlsplit(url)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(f"PUT {target.path}?{target.query} HTTP/1.1\r\nHost: {target.netloc}\r\n".encode()
                     + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        answer = b""
        while b"</Error>" not in answer:
            more = sock.recv(65536)
            if not more:
                break
            answer += more
    return answer


def test_a_chunked_upload_without_aws_chunked_is_not_implemented(server: MinicloudServer) -> None:
    """S3 takes no body of unannounced length: a PUT (or UploadPart) with Transfer-Encoding: chunked
    and neither Content-Length nor aws-chunked gets 501 NotImplemented naming the header, and
    nothing is stored."""
    s3 = server.client("s3")
    s3.create_bucket(Bucket="chunked-te")
    answer = _chunked_put(server, s3.generate_presigned_url(
        "put_object", Params={"Bucket": "chunked-te", "Key": "k"}))
    assert answer.startswith(b"HTTP/1.1 501 "), answer[:200]
    assert b"<Code>NotImplemented</Code>" in answer
    assert b"<Header>Transfer-Encoding</Header>" in answer
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket="chunked-te", Key="k")
    assert status(err) == 404
    upload = s3.create_multipart_upload(Bucket="chunked-te", Key="mp")["UploadId"]
    answer = _chunked_put(server, s3.generate_presigned_url(
        "upload_part", Params={"Bucket": "chunked-te", "Key": "mp", "UploadId": upload, "PartNumber": 1}))
    assert answer.startswith(b"HTTP/1.1 501 "), answer[:200]
    assert s3.list_parts(Bucket="chunked-te", Key="mp", UploadId=upload).get("Parts", []) == []


def test_a_body_that_is_not_the_signed_digest_is_refused_and_not_stored(s3: Any, bucket: str) -> None:
    """botocore signs a PutObject's SHA-256 over plain HTTP; a body changed after signing (same
    length) is refused with S3's XAmzContentSHA256Mismatch, and no object is written."""
    def swap_body(request: Any, **kw: Any) -> None:
        request.body = b"y" * 10
    s3.meta.events.register("before-send.s3.PutObject", swap_body)
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="swapped", Body=b"x" * 10)
    assert (status(err), code(err)) == (400, "XAmzContentSHA256Mismatch")
    s3.meta.events.unregister("before-send.s3.PutObject", swap_body)
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    s3.put_object(Bucket=bucket, Key="kept", Body=b"x" * 10)  # the signed digest, matched
    assert s3.get_object(Bucket=bucket, Key="kept")["Body"].read() == b"x" * 10


# -- documents S3 cannot use --------------------------------------------------------------------------

@pytest.mark.parametrize(("operation", "params", "expected"), [
    ("put_bucket_tagging", {"Tagging": {"TagSet": [{"Key": "team"}]}}, "MalformedXML"),
    ("put_bucket_tagging", {}, "MissingRequestBodyError"),
    ("put_bucket_cors", {"CORSConfiguration": {"CORSRules": [{"AllowedOrigins": ["*"]}]}}, "MalformedXML"),
    ("put_bucket_lifecycle_configuration",
     {"LifecycleConfiguration": {"Rules": [{"ID": "r", "Filter": {"Prefix": ""}, "Expiration": {"Days": 1}}]}},
     "MalformedXML"),
    ("put_bucket_request_payment", {"RequestPaymentConfiguration": {}}, "MalformedXML"),
    ("put_bucket_logging", {"BucketLoggingStatus": {"LoggingEnabled": {"TargetPrefix": "logs/"}}}, "MalformedXML"),
    ("put_bucket_website", {}, "MissingRequestBodyError"),
])
def test_a_missing_or_incomplete_document_is_malformed(server: MinicloudServer, bucket: str, operation: str,
                                                        params: dict[str, Any], expected: str) -> None:
    """A document lacking an element S3's schema requires is MalformedXML, a missing one
    MissingRequestBodyError (400 both), for every operation; nothing of the bucket changes."""
    raw = server.client("s3", parameter_validation=False)  # (botocore would refuse to send these)
    with pytest.raises(ClientError) as raised:
        getattr(raw, operation)(Bucket=bucket, **params)
    assert (code(raised), status(raised)) == (expected, 400)
    with pytest.raises(ClientError) as unchanged:
        raw.get_bucket_tagging(Bucket=bucket)
    assert code(unchanged) == "NoSuchTagSet"
