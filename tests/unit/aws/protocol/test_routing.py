"""REST routing: the most specific operation wins."""

from __future__ import annotations

import pytest

from minicloud.aws.errors import ServiceError
from minicloud.aws.protocol.models import load_service_model
from minicloud.aws.protocol.parsers import create_parser
from minicloud.aws.protocol.routing import compile_path
from minicloud.aws.protocol.wire_errors import MethodNotAllowed, UnknownRoute
from minicloud.aws.request import AwsRequest, Headers


def _s3(method: str, path: str, query: str = "", headers: dict[str, str] | None = None,
        body: bytes = b"") -> tuple[str, dict[str, object]]:
    parser = create_parser(load_service_model("s3"))
    operation, params = parser.parse(AwsRequest(method, path, query, Headers((headers or {}).items()),
                                                body))
    return operation.name, params


@pytest.mark.parametrize(("method", "path", "query", "headers", "expected"), [
    ("GET", "/", "", {}, "ListBuckets"),
    ("GET", "/bucket", "", {}, "ListObjects"),
    ("GET", "/bucket/", "", {}, "ListObjects"),
    ("GET", "/bucket", "list-type=2", {}, "ListObjectsV2"),
    ("GET", "/bucket", "list-type=2&prefix=a%2Fb&delimiter=%2F", {}, "ListObjectsV2"),
    ("GET", "/bucket", "acl", {}, "GetBucketAcl"),
    ("GET", "/bucket", "acl=", {}, "GetBucketAcl"),
    ("GET", "/bucket", "tagging", {}, "GetBucketTagging"),
    ("GET", "/bucket", "versions", {}, "ListObjectVersions"),
    ("GET", "/bucket", "uploads", {}, "ListMultipartUploads"),
    ("GET", "/bucket", "location", {}, "GetBucketLocation"),
    ("GET", "/bucket", "lifecycle", {}, "GetBucketLifecycleConfiguration"),
    ("GET", "/bucket", "analytics", {}, "ListBucketAnalyticsConfigurations"),
    ("GET", "/bucket", "analytics&id=x", {}, "GetBucketAnalyticsConfiguration"),
    ("GET", "/bucket/key", "", {}, "GetObject"),
    ("GET", "/bucket/a/b/c.txt", "", {}, "GetObject"),
    ("GET", "/bucket/key", "acl", {}, "GetObjectAcl"),
    ("GET", "/bucket/key", "tagging", {}, "GetObjectTagging"),
    ("GET", "/bucket/key", "uploadId=u", {}, "ListParts"),
    ("GET", "/bucket/key", "x-id=GetObject", {}, "GetObject"),
    ("HEAD", "/bucket", "", {}, "HeadBucket"),
    ("HEAD", "/bucket/key", "", {}, "HeadObject"),
    ("PUT", "/bucket", "", {}, "CreateBucket"),
    ("PUT", "/bucket", "tagging", {}, "PutBucketTagging"),
    ("PUT", "/bucket/key", "", {}, "PutObject"),
    ("PUT", "/bucket/key", "", {"x-amz-copy-source": "/src/key"}, "CopyObject"),
    ("PUT", "/bucket/key", "partNumber=1&uploadId=u", {}, "UploadPart"),
    ("PUT", "/bucket/key", "partNumber=1&uploadId=u", {"x-amz-copy-source": "/s/k"}, "UploadPartCopy"),
    ("PUT", "/bucket/key", "tagging", {}, "PutObjectTagging"),
    ("POST", "/bucket", "delete", {}, "DeleteObjects"),
    ("POST", "/bucket/key", "uploads", {}, "CreateMultipartUpload"),
    ("POST", "/bucket/key", "uploadId=u", {}, "CompleteMultipartUpload"),
    ("DELETE", "/bucket/key", "", {}, "DeleteObject"),
    ("DELETE", "/bucket/key", "uploadId=u", {}, "AbortMultipartUpload"),
    ("DELETE", "/bucket", "", {}, "DeleteBucket"),
    ("DELETE", "/bucket", "tagging", {}, "DeleteBucketTagging"),
])
def test_s3_routes_to_the_most_specific_operation(method: str, path: str, query: str,
                                                  headers: dict[str, str], expected: str) -> None:
    name, _ = _s3(method, path, query, headers)
    assert name == expected


def test_s3_labels_are_percent_decoded_and_greedy_keys_keep_slashes() -> None:
    name, params = _s3("GET", "/my-bucket/a%20b/c%2Bd//e%2F", "versionId=v%201")
    assert name == "GetObject"
    assert params == {"Bucket": "my-bucket", "Key": "a b/c+d//e/", "VersionId": "v 1"}


def test_x_id_picks_between_wire_identical_operations() -> None:
    assert _s3("GET", "/", "")[0] == "ListBuckets"
    assert _s3("GET", "/", "x-id=ListDirectoryBuckets")[0] == "ListDirectoryBuckets"
    assert _s3("GET", "/bucket", "lifecycle&x-id=GetBucketLifecycle")[0] == "GetBucketLifecycle"


def test_only_known_s3_operations_are_wire_identical() -> None:
    """Operations no request can reach without x-id (deprecated twins; S3 Express's listing)."""
    router = create_parser(load_service_model("s3")).router  # type: ignore[attr-defined]
    assert router.shadowed() == {
        "GetBucketLifecycle": "GetBucketLifecycleConfiguration",
        "GetBucketNotification": "GetBucketNotificationConfiguration",
        "PutBucketLifecycle": "PutBucketLifecycleConfiguration",
        "PutBucketNotification": "PutBucketNotificationConfiguration",
        "ListDirectoryBuckets": "ListBuckets",
    }


def test_lambda_has_no_wire_identical_operations() -> None:
    router = create_parser(load_service_model("lambda")).router  # type: ignore[attr-defined]
    assert router.shadowed() == {}


@pytest.mark.parametrize(("method", "path", "query", "expected"), [
    ("GET", "/2015-03-31/functions/", "", "ListFunctions"),
    ("GET", "/2015-03-31/functions", "", "ListFunctions"),
    ("GET", "/2015-03-31/functions/my-fn", "", "GetFunction"),
    ("GET", "/2015-03-31/functions/my-fn/configuration", "", "GetFunctionConfiguration"),
    ("POST", "/2015-03-31/functions/my-fn/invocations", "", "Invoke"),
    ("GET", "/2018-10-31/layers", "", "ListLayers"),
    ("GET", "/2018-10-31/layers", "find=LayerVersion&Arn=arn%3Ax", "GetLayerVersionByArn"),
    ("GET", "/2019-09-30/functions/f/provisioned-concurrency", "List=ALL", "ListProvisionedConcurrencyConfigs"),
    ("GET", "/2019-09-30/functions/f/provisioned-concurrency", "Qualifier=1", "GetProvisionedConcurrencyConfig"),
    ("GET", "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Afunction%3Af", "", "GetFunction"),
])
def test_lambda_routes(method: str, path: str, query: str, expected: str) -> None:
    parser = create_parser(load_service_model("lambda"))
    operation, _ = parser.parse(AwsRequest(method, path, query))
    assert operation.name == expected


def test_wrong_method_is_method_not_allowed_and_unknown_path_is_a_clear_error() -> None:
    parser = create_parser(load_service_model("lambda"))
    with pytest.raises(MethodNotAllowed):
        parser.parse(AwsRequest("PATCH", "/2015-03-31/functions/f"))
    with pytest.raises(UnknownRoute) as info:
        parser.parse(AwsRequest("GET", "/no/such/thing"))
    assert "GET /no/such/thing" in info.value.message
    assert info.value.status == 404


def test_malformed_percent_encoding_in_a_label_is_a_service_error() -> None:
    with pytest.raises(ServiceError):
        _s3("GET", "/bucket/%FF%FE")


def test_compile_path() -> None:
    regex, labels, literal, greedy = compile_path("/{Bucket}/{Key+}")
    assert labels == ("Bucket", "Key")
    assert greedy == 1
    assert literal == 2
    m = regex.match("/b/k/x/")
    assert m is not None and m.groups() == ("b", "k/x/")
    assert regex.match("/b/") is None


def test_remembered_key_sets_still_test_headers_and_paths() -> None:
    from minicloud.aws.protocol.routing import Router, parse_query

    router = Router(load_service_model("s3"))
    query = parse_query("X-Amz-Signature=abc&X-Amz-Date=20261129T170000Z")
    for _ in range(2):  # the second time from the remembered routes of this key set
        assert router.match("PUT", "/b/k", query, Headers([]))[0].operation.name == "PutObject"
        assert router.match("PUT", "/b/k", query, Headers([("x-amz-copy-source", "/b/j")]))[0].operation.name == (
            "CopyObject")
        assert router.match("PUT", "/b", query, Headers([]))[0].operation.name == "CreateBucket"
        assert router.match("get", "/b/k", query, Headers([]))[0].operation.name == "GetObject"
        assert router.match("GET", "/b/k", {**query, "tagging": [""]}, Headers([]))[0].operation.name == (
            "GetObjectTagging")
