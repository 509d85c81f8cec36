"""S3 static website hosting against a real ``minicloud up``: the configuration through boto3, curl
(SigV4) and the AWS CLI; the website endpoint (``<bucket>.s3-website-<region>.localhost`` on the
same port) through http.client and curl with a Host header, as a browser reaches it."""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.aws import code, status
from tests.support.server import Keys, MinicloudServer


@pytest.fixture
def s3(server: MinicloudServer) -> Any:
    return server.client("s3")


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"site-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def host(bucket: str, form: str = "-", region: str = "us-east-1") -> str:
    return f"{bucket}.s3-website{form}{region}.localhost"


def get(server: MinicloudServer, bucket: str, path: str, method: str = "GET", *, form: str = "-",
        region: str = "us-east-1", headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One request to the bucket's website endpoint (``Host: <bucket>.s3-website-<region>.localhost``)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request(method, path, headers={"Host": f"{host(bucket, form, region)}:{server.port}", **(headers or {})})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def public_read(s3: Any, bucket: str, *, listing: bool = False) -> None:
    """A bucket policy that makes every object public (and, with ``listing``, the keys: a missing
    key is then a 404, not a 403)."""
    statements = [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                   "Resource": f"arn:aws:s3:::{bucket}/*"}]
    if listing:
        statements.append({"Effect": "Allow", "Principal": "*", "Action": "s3:ListBucket",
                           "Resource": f"arn:aws:s3:::{bucket}"})
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": statements}))


def items(page: bytes) -> dict[str, str]:
    """The ``<li>Name: value</li>`` lines of the first list of an HTML error page."""
    first = page.decode().split("</ul>", 1)[0]
    return dict(re.findall(r"<li>([A-Za-z]+): (.*?)</li>", first))


def website(s3: Any, bucket: str, **config: Any) -> None:
    s3.put_bucket_website(Bucket=bucket, WebsiteConfiguration=config)


SITE = {"IndexDocument": {"Suffix": "index.html"}, "ErrorDocument": {"Key": "error.html"}}


# -- the configuration -------------------------------------------------------------------------------
def test_configuration_round_trip(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as err:
        s3.get_bucket_website(Bucket=bucket)
    assert code(err) == "NoSuchWebsiteConfiguration" and status(err) == 404
    rules = [
        {"Condition": {"KeyPrefixEquals": "docs/"}, "Redirect": {"ReplaceKeyPrefixWith": "documents/"}},
        {"Condition": {"HttpErrorCodeReturnedEquals": "404"},
         "Redirect": {"HostName": "example.com", "Protocol": "https", "HttpRedirectCode": "302",
                      "ReplaceKeyWith": "missing.html"}},
    ]
    website(s3, bucket, **SITE, RoutingRules=rules)
    got = s3.get_bucket_website(Bucket=bucket)
    assert got["IndexDocument"] == {"Suffix": "index.html"} and got["ErrorDocument"] == {"Key": "error.html"}
    assert got["RoutingRules"] == rules and "RedirectAllRequestsTo" not in got
    website(s3, bucket, RedirectAllRequestsTo={"HostName": "example.com"})  # replaced whole
    got = s3.get_bucket_website(Bucket=bucket)
    assert got["RedirectAllRequestsTo"] == {"HostName": "example.com"} and "IndexDocument" not in got
    for _ in range(2):  # deleting what is not there is no error
        response = s3.delete_bucket_website(Bucket=bucket)
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as err:
        s3.get_bucket_website(Bucket=bucket)
    assert code(err) == "NoSuchWebsiteConfiguration"
    with pytest.raises(ClientError) as err:
        s3.get_bucket_website(Bucket=f"missing-{uuid.uuid4().hex[:8]}")
    assert code(err) == "NoSuchBucket"


_INDEX = {"IndexDocument": {"Suffix": "index.html"}}
_MALFORMED = ("MalformedXML", "The XML you provided was not well-formed or did not validate against our published "
              "schema")


def _rule(**redirect: str) -> dict[str, Any]:
    return {"Redirect": redirect}


REFUSED: list[tuple[dict[str, Any], tuple[str, str]]] = [
    ({}, ("InvalidArgument", "A value for IndexDocument Suffix must be provided if RedirectAllRequestsTo is empty")),
    ({"IndexDocument": {"Suffix": ""}}, ("InvalidArgument", "The IndexDocument Suffix is not well formed")),
    ({"IndexDocument": {"Suffix": "a/index.html"}}, ("InvalidArgument", "The IndexDocument Suffix is not well formed")),
    ({"IndexDocument": {}}, _MALFORMED),
    ({**_INDEX, "RedirectAllRequestsTo": {"HostName": "example.com"}},
     ("InvalidArgument", "RedirectAllRequestsTo cannot be provided in conjunction with other Routing Rules.")),
    ({"RedirectAllRequestsTo": {}}, _MALFORMED),
    ({"RedirectAllRequestsTo": {"HostName": "example.com", "Protocol": "ftp"}},
     ("InvalidRequest", "Invalid protocol, protocol can be http or https. If not defined the protocol will be "
                        "selected automatically.")),
    ({**_INDEX, "ErrorDocument": {}}, _MALFORMED),
    ({**_INDEX, "RoutingRules": []}, _MALFORMED),
    ({**_INDEX, "RoutingRules": [_rule(HostName="example.com")] * 51},
     ("InvalidRequest", "51 routing rules provided, the number of routing rules in a website configuration is "
                        "limited to 50.")),
    ({**_INDEX, "RoutingRules": [{"Condition": {"KeyPrefixEquals": "a/"}}]}, _MALFORMED),
    ({**_INDEX, "RoutingRules": [_rule()]}, _MALFORMED),
    ({**_INDEX, "RoutingRules": [{"Condition": {}, **_rule(HostName="example.com")}]},
     ("InvalidRequest", "Condition cannot be empty. To redirect all requests without a condition, the condition "
                        "element shouldn't be present.")),
    ({**_INDEX, "RoutingRules": [_rule(HttpRedirectCode="300")]},
     ("InvalidRequest", "The provided HTTP redirect code (300) is not valid. Valid codes are 3XX except 300.")),
    ({**_INDEX, "RoutingRules": [_rule(HttpRedirectCode="moved")]}, _MALFORMED),
    ({**_INDEX, "RoutingRules": [{"Condition": {"HttpErrorCodeReturnedEquals": "302"}, **_rule(HostName="x.com")}]},
     ("InvalidRequest", "The provided HTTP error code (302) is not valid. Valid codes are 4XX or 5XX.")),
    ({**_INDEX, "RoutingRules": [_rule(ReplaceKeyWith="a", ReplaceKeyPrefixWith="b/")]},
     ("InvalidRequest", "You can only define ReplaceKeyPrefix or ReplaceKey but not both.")),
    ({**_INDEX, "RoutingRules": [_rule(Protocol="gopher")]},
     ("InvalidRequest", "Invalid protocol, protocol can be http or https. If not defined the protocol will be "
                        "selected automatically.")),
]


@pytest.mark.parametrize(("config", "expected"), REFUSED)
def test_configuration_refused_as_s3_refuses_it(server: MinicloudServer, bucket: str, config: dict[str, Any],
                                                 expected: tuple[str, str]) -> None:
    raw = server.client("s3", parameter_validation=False)  # (boto3 would refuse some of them itself)
    with pytest.raises(ClientError) as err:
        raw.put_bucket_website(Bucket=bucket, WebsiteConfiguration=config)
    assert (code(err), err.value.response["Error"]["Message"]) == expected and status(err) == 400
    with pytest.raises(ClientError) as err:
        raw.get_bucket_website(Bucket=bucket)
    assert code(err) == "NoSuchWebsiteConfiguration"  # nothing was stored


def test_argument_errors_name_the_argument(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as err:
        website(s3, bucket, IndexDocument={"Suffix": "pages/index.html"})
    error = err.value.response["Error"]
    assert error["ArgumentName"] == "IndexDocument" and error["ArgumentValue"] == "pages/index.html"
    with pytest.raises(ClientError) as err:
        website(s3, bucket, **_INDEX, RedirectAllRequestsTo={"HostName": "example.com"})
    error = err.value.response["Error"]
    assert error["ArgumentName"] == "RedirectAllRequestsTo" and error["ArgumentValue"] == "not null"


def test_unreadable_xml_is_malformed(s3: Any, bucket: str) -> None:
    """boto3 signs a body that is no XML document (replaced before signing)."""
    bodies = iter([b"<WebsiteConfiguration><IndexDocument><Suffix>i.html</Suffix>", b"not xml", b""])

    def replace(request: Any, **_: Any) -> None:
        request.data = next(bodies)
        for name in list(request.headers):  # (its checksums were the modeled body's)
            if name.lower().startswith(("content-md5", "x-amz-checksum", "x-amz-sdk-checksum")):
                del request.headers[name]
    s3.meta.events.register("before-sign.s3.PutBucketWebsite", replace)
    for expected in ("MalformedXML", "MalformedXML", "MissingRequestBodyError"):
        with pytest.raises(ClientError) as err:
            website(s3, bucket, **SITE)
        assert (code(err), status(err)) == (expected, 400)


def test_iam_actions(server: MinicloudServer, s3: Any, bucket: str) -> None:
    iam = server.client("iam")
    name = f"u{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="read", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetBucketWebsite",
                                                 "Resource": f"arn:aws:s3:::{bucket}"}]}))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    user = server.client("s3", keys=Keys(key["AccessKeyId"], key["SecretAccessKey"]))
    with pytest.raises(ClientError) as err:
        website(user, bucket, **SITE)
    assert code(err) == "AccessDenied"
    website(s3, bucket, **SITE)
    assert user.get_bucket_website(Bucket=bucket)["IndexDocument"] == {"Suffix": "index.html"}
    with pytest.raises(ClientError) as err:
        user.delete_bucket_website(Bucket=bucket)
    assert code(err) == "AccessDenied"
    iam.put_user_policy(UserName=name, PolicyName="write", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                                                 "Action": ["s3:PutBucketWebsite", "s3:DeleteBucketWebsite"],
                                                 "Resource": f"arn:aws:s3:::{bucket}"}]}))
    website(user, bucket, RedirectAllRequestsTo={"HostName": "example.com"})
    user.delete_bucket_website(Bucket=bucket)
    with pytest.raises(ClientError) as err:
        s3.get_bucket_website(Bucket=bucket)
    assert code(err) == "NoSuchWebsiteConfiguration"


def test_aws_cli(server: MinicloudServer, s3: Any, bucket: str) -> None:
    server.aws("s3", "website", f"s3://{bucket}", "--index-document", "index.html", "--error-document", "error.html")
    assert server.aws_json("s3api", "get-bucket-website", "--bucket", bucket) == {
        "IndexDocument": {"Suffix": "index.html"}, "ErrorDocument": {"Key": "error.html"}}
    s3.put_object(Bucket=bucket, Key="index.html", Body=b"from the CLI", ContentType="text/html")
    public_read(s3, bucket)
    assert get(server, bucket, "/")[0::2] == (200, b"from the CLI")
    server.aws("s3api", "delete-bucket-website", "--bucket", bucket)
    failed = server.aws("s3api", "get-bucket-website", "--bucket", bucket, check=False)
    assert failed.returncode != 0 and "NoSuchWebsiteConfiguration" in failed.stderr


# -- the website endpoint ----------------------------------------------------------------------------
def test_index_documents_and_folders(server: MinicloudServer, s3: Any, bucket: str) -> None:
    website(s3, bucket, **SITE)
    public_read(s3, bucket)
    s3.put_object(Bucket=bucket, Key="index.html", Body=b"<h1>home</h1>", ContentType="text/html")
    s3.put_object(Bucket=bucket, Key="docs/index.html", Body=b"<h1>docs</h1>", ContentType="text/html")
    s3.put_object(Bucket=bucket, Key="docs/a b.txt", Body=b"spaced", ContentType="text/plain")
    for form in ("-", "."):  # both of AWS's forms
        code_, headers, body = get(server, bucket, "/", form=form)
        assert (code_, body) == (200, b"<h1>home</h1>") and headers["content-type"] == "text/html"
    code_, headers, body = get(server, bucket, "/docs")
    assert (code_, headers["location"], body) == (302, "/docs/", b"")
    assert get(server, bucket, "/docs/")[0::2] == (200, b"<h1>docs</h1>")
    assert get(server, bucket, "/docs/a%20b.txt")[0::2] == (200, b"spaced")
    # HEAD, ranges and conditional requests: GetObject's own
    code_, headers, body = get(server, bucket, "/docs/", "HEAD")
    assert (code_, body, headers["content-length"]) == (200, b"", "13")
    code_, headers, body = get(server, bucket, "/", headers={"Range": "bytes=1-2"})
    assert (code_, body, headers["content-range"]) == (206, b"h1", "bytes 1-2/13")
    etag = get(server, bucket, "/")[1]["etag"]
    assert get(server, bucket, "/", headers={"If-None-Match": etag})[0] == 304
    # curl, as a user would type it
    out = subprocess.run(["curl", "-s", "-H", f"Host: {host(bucket)}", f"{server.endpoint}/"],
                         capture_output=True, timeout=30)
    assert out.stdout == b"<h1>home</h1>"


def test_errors_with_and_without_an_error_document(server: MinicloudServer, s3: Any, bucket: str) -> None:
    website(s3, bucket, **SITE)
    public_read(s3, bucket)
    # No error document yet: S3's HTML page. Without s3:ListBucket a missing key is a 403.
    code_, headers, body = get(server, bucket, "/missing.html")
    assert code_ == 403 and headers["content-type"] == "text/html; charset=utf-8"
    assert body.startswith(b"<html>\n<head><title>403 Forbidden</title></head>")
    fields = items(body)
    assert fields["Code"] == "AccessDenied" and fields["Message"] == "Access Denied"
    assert fields["RequestId"] == headers["x-amz-request-id"] and fields["HostId"] == headers["x-amz-id-2"]
    assert b"An Error Occurred While Attempting to Retrieve a Custom Error Document" in body
    public_read(s3, bucket, listing=True)  # with it, a 404
    code_, _, body = get(server, bucket, "/missing.html")
    assert code_ == 404 and b"<h1>404 Not Found</h1>" in body
    assert items(body)["Code"] == "NoSuchKey" and items(body)["Key"] == "missing.html"
    assert "<li>Key: error.html</li>" in body.decode().split("Custom Error Document", 1)[1]
    # The error document, with the error's status
    s3.put_object(Bucket=bucket, Key="error.html", Body=b"<p>lost?</p>", ContentType="text/html")
    code_, headers, body = get(server, bucket, "/missing.html")
    assert (code_, body, headers["content-type"]) == (404, b"<p>lost?</p>", "text/html")
    assert get(server, bucket, "/nowhere/", "HEAD")[0::2] == (404, b"")
    public_read(s3, bucket)
    assert get(server, bucket, "/missing.html")[0::2] == (403, b"<p>lost?</p>")
    # A missing folder index is an error too (no redirect: there is no index document under it)
    assert get(server, bucket, "/nofolder")[0::2] == (403, b"<p>lost?</p>")


def test_private_objects_are_forbidden(server: MinicloudServer, s3: Any, bucket: str) -> None:
    website(s3, bucket, **SITE)
    s3.put_object(Bucket=bucket, Key="index.html", Body=b"private home")
    s3.put_object(Bucket=bucket, Key="error.html", Body=b"private error")
    code_, _, body = get(server, bucket, "/")
    assert code_ == 403 and items(body)["Code"] == "AccessDenied" and b"private" not in body
    document_error = body.decode().split("Custom Error Document", 1)[1]
    assert "<li>Code: AccessDenied</li>" in document_error  # the error document is not public either
    s3.put_object(Bucket=bucket, Key="shared.html", Body=b"acl-public", ACL="public-read")  # an ACL suffices
    assert get(server, bucket, "/shared.html")[0::2] == (200, b"acl-public")
    # A signature changes nothing: the website endpoint serves the anonymous principal only
    assert server.root is not None
    out = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--aws-sigv4", "aws:amz:us-east-1:s3",
         "--user", f"{server.root.access_key_id}:{server.root.secret_access_key}",
         "-H", f"Host: {host(bucket)}", f"{server.endpoint}/index.html"], capture_output=True, text=True, timeout=30)
    assert out.stdout == "403"


def test_object_redirects(server: MinicloudServer, s3: Any, bucket: str) -> None:
    website(s3, bucket, **SITE)
    public_read(s3, bucket)
    s3.put_object(Bucket=bucket, Key="old.html", Body=b"", WebsiteRedirectLocation="/new.html")
    s3.put_object(Bucket=bucket, Key="away.html", Body=b"kept", WebsiteRedirectLocation="https://example.com/x")
    code_, headers, body = get(server, bucket, "/old.html")
    assert (code_, headers["location"], body) == (301, "/new.html", b"")
    assert get(server, bucket, "/away.html", "HEAD")[1]["location"] == "https://example.com/x"
    assert s3.get_object(Bucket=bucket, Key="away.html")["Body"].read() == b"kept"  # the REST endpoint serves it
    # A copy takes the redirect its request gives, never its source's (the COPY directive notwithstanding)
    s3.put_object(Bucket=bucket, Key="page1.html", Body=b"page one", ContentType="text/html")
    s3.copy_object(Bucket=bucket, Key="page1.html", CopySource={"Bucket": bucket, "Key": "page1.html"},
                   WebsiteRedirectLocation="/page2.html")
    assert get(server, bucket, "/page1.html")[1]["location"] == "/page2.html"
    kept = s3.head_object(Bucket=bucket, Key="page1.html")
    assert kept["ContentType"] == "text/html" and kept["WebsiteRedirectLocation"] == "/page2.html"
    s3.copy_object(Bucket=bucket, Key="copy.html", CopySource={"Bucket": bucket, "Key": "page1.html"})
    assert get(server, bucket, "/copy.html")[0::2] == (200, b"page one")
    # S3 takes a path in the bucket or an http(s) URL, nothing else
    for bad in ("page2.html", "ftp://example.com/x", "/" + "x" * 2048):
        with pytest.raises(ClientError) as err:
            s3.put_object(Bucket=bucket, Key="bad.html", Body=b"x", WebsiteRedirectLocation=bad)
        assert (code(err), status(err)) == ("InvalidRedirectLocation", 400)
    with pytest.raises(ClientError) as err:
        s3.create_multipart_upload(Bucket=bucket, Key="bad.html", WebsiteRedirectLocation="elsewhere")
    assert code(err) == "InvalidRedirectLocation"
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket=bucket, Key="bad.html")
    assert status(err) == 404


def test_routing_rules(server: MinicloudServer, s3: Any, bucket: str) -> None:
    website(s3, bucket, **SITE, RoutingRules=[
        {"Condition": {"KeyPrefixEquals": "docs/"}, "Redirect": {"ReplaceKeyPrefixWith": "documents/"}},
        {"Condition": {"KeyPrefixEquals": "images/"}, "Redirect": {"ReplaceKeyWith": "folderdeleted.html",
                                                                   "HttpRedirectCode": "302"}},
        {"Condition": {"HttpErrorCodeReturnedEquals": "404", "KeyPrefixEquals": "shop/"},
         "Redirect": {"HostName": "shop.example.com", "Protocol": "https", "ReplaceKeyPrefixWith": "report-404/",
                      "HttpRedirectCode": "307"}},
    ])
    public_read(s3, bucket, listing=True)
    s3.put_object(Bucket=bucket, Key="shop/here.html", Body=b"in stock")
    site = f"{host(bucket)}:{server.port}"
    code_, headers, _ = get(server, bucket, "/docs/guide%20one.html")
    assert (code_, headers["location"]) == (301, f"http://{site}/documents/guide%20one.html")
    code_, headers, _ = get(server, bucket, "/images/cat.png")
    assert (code_, headers["location"]) == (302, f"http://{site}/folderdeleted.html")
    code_, headers, _ = get(server, bucket, "/shop/gone.html")  # only once it is a 404
    assert (code_, headers["location"]) == (307, "https://shop.example.com/report-404/gone.html")
    assert get(server, bucket, "/shop/here.html")[0::2] == (200, b"in stock")
    assert get(server, bucket, "/other.html")[0] == 404  # no rule for it


def test_redirect_all_requests(server: MinicloudServer, s3: Any, bucket: str) -> None:
    website(s3, bucket, RedirectAllRequestsTo={"HostName": "www.example.com", "Protocol": "https"})
    code_, headers, body = get(server, bucket, "/a/b%20c.html?x=1")
    assert (code_, headers["location"], body) == (301, "https://www.example.com/a/b%20c.html", b"")
    website(s3, bucket, RedirectAllRequestsTo={"HostName": "example.org"})  # the request's protocol
    assert get(server, bucket, "/", "HEAD")[1]["location"] == "http://example.org/"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_only_get_and_head(server: MinicloudServer, s3: Any, bucket: str, method: str) -> None:
    website(s3, bucket, **SITE)
    public_read(s3, bucket)
    s3.put_object(Bucket=bucket, Key="index.html", Body=b"home")
    code_, headers, body = get(server, bucket, "/index.html", method, headers={"Content-Length": "0"})
    assert code_ == 405 and headers["content-type"] == "text/html; charset=utf-8"
    fields = items(body)
    assert (fields["Code"], fields["Method"], fields["ResourceType"]) == ("MethodNotAllowed", method, "OBJECT")
    assert s3.get_object(Bucket=bucket, Key="index.html")["Body"].read() == b"home"  # untouched


def test_buckets_that_are_no_website(server: MinicloudServer, s3: Any, bucket: str) -> None:
    code_, _, body = get(server, bucket, "/")
    fields = items(body)
    assert code_ == 404 and b"<title>404 Not Found</title>" in body
    assert (fields["Code"], fields["BucketName"]) == ("NoSuchWebsiteConfiguration", bucket)
    assert fields["Message"] == "The specified bucket does not have a website configuration"
    missing = f"missing-{uuid.uuid4().hex[:8]}"
    code_, _, body = get(server, missing, "/index.html")
    assert code_ == 404 and (items(body)["Code"], items(body)["BucketName"]) == ("NoSuchBucket", missing)
    website(s3, bucket, **SITE)
    code_, _, body = get(server, bucket, "/", region="eu-west-1")  # another region's endpoint
    assert code_ == 400 and items(body)["Code"] == "IncorrectEndpoint"


def test_website_hosts_leave_everything_else_alone(server: MinicloudServer, s3: Any, bucket: str) -> None:
    website(s3, bucket, **SITE)
    public_read(s3, bucket)
    s3.put_object(Bucket=bucket, Key="v2/index.html", Body=b"a key under v2/")
    s3.put_object(Bucket=bucket, Key="index.html", Body=b"<p>page</p>", ContentType="text/html")
    # Unsigned /v2/ stays the registry's on every host, website hosts included (DESIGN.md's contract):
    # a website cannot serve keys under v2/
    status, headers, _ = get(server, bucket, "/v2/")
    assert status == 401 and headers.get("docker-distribution-api-version") == "registry/2.0"
    # minicloud's own pages stay minicloud's
    code_, _, body = get(server, bucket, "/_minicloud/health")
    assert code_ == 200 and json.loads(body)["services"]["s3"] == "running"
    # The REST endpoint still lists the bucket (its root is no index document), signed or not
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["index.html", "v2/index.html"]
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request("GET", f"/{bucket}/index.html")
    response = conn.getresponse()
    assert (response.status, response.read()) == (200, b"<p>page</p>")
    # A website's host is an origin of its own: its pages are not sandboxed (the REST endpoint's are),
    # and the console is never served there
    assert "sandbox" in (response.getheader("content-security-policy") or "")
    conn.close()
    assert "content-security-policy" not in get(server, bucket, "/")[1]
    assert get(server, bucket, "/_minicloud/console/")[0] == 404
