"""Website endpoints: which hosts are websites, how routing rules pick and redirect, and the HTML
error page."""

from __future__ import annotations

from typing import Any

import pytest

from minicloud.aws.request import AwsRequest, Headers
from minicloud.services.s3.errors import NoSuchKey
from minicloud.services.s3.website_endpoint import error_page, matching_rule, redirect, rule_location, website_site


@pytest.mark.parametrize(("host", "site"), [
    ("mysite.s3-website-us-east-1.localhost:4566", ("mysite", "us-east-1")),
    ("mysite.s3-website.eu-central-1.localhost", ("mysite", "eu-central-1")),
    ("www.example.com.s3-website-us-west-2.amazonaws.com", ("www.example.com", "us-west-2")),
    ("MySite.S3-Website-US-East-1.LOCALHOST.", ("mysite", "us-east-1")),
    ("mysite.s3-website.us-east-1", ("mysite", "us-east-1")),
    ("s3-website-us-east-1.amazonaws.com", None),  # no bucket
    ("mysite.s3-website", None),  # no region
    ("mysite.s3-website-", None),
    ("mysite.s3.us-east-1.localhost", None),  # the REST endpoint
    ("mysite.localhost:4566", None),
    ("127.0.0.1:4566", None),
    ("[::1]:4566", None),
    # a bucket label that looks like a website label, in a virtual-hosted API request: no region after it
    ("docs.s3-website-old.s3.us-east-1.localhost", None),
    ("docs.s3-website.files.s3.us-east-1.localhost", None),
])
def test_website_hosts(host: str, site: tuple[str, str] | None) -> None:
    assert website_site(host) == site


def _request(host: str = "site.s3-website-us-east-1.localhost:4566") -> AwsRequest:
    return AwsRequest(method="GET", path="/", headers=Headers([("host", host)]))


RULES: dict[str, Any] = {"RoutingRules": [
    {"Condition": {"KeyPrefixEquals": "docs/"}, "Redirect": {"ReplaceKeyPrefixWith": "documents/"}},
    {"Condition": {"HttpErrorCodeReturnedEquals": "404"}, "Redirect": {"HostName": "example.com"}},
    {"Condition": {"HttpErrorCodeReturnedEquals": "403", "KeyPrefixEquals": "private/"},
     "Redirect": {"ReplaceKeyWith": "login.html", "Protocol": "https", "HttpRedirectCode": "302"}},
]}


def test_rules_before_and_after_the_read() -> None:
    assert matching_rule(RULES, "docs/a.html", None) == RULES["RoutingRules"][0]
    assert matching_rule(RULES, "docs/a.html", 404) == RULES["RoutingRules"][1]  # (only error rules after)
    assert matching_rule(RULES, "a.html", None) is None
    assert matching_rule(RULES, "private/x", 403) == RULES["RoutingRules"][2]
    assert matching_rule(RULES, "public/x", 403) is None
    assert matching_rule({"RoutingRules": [{"Redirect": {"HostName": "x"}}]}, "any", None) is not None
    assert matching_rule({}, "any", None) is None


def test_rule_locations() -> None:
    rules = RULES["RoutingRules"]
    assert rule_location(rules[0], "docs/a b.html", _request()) == (
        301, "http://site.s3-website-us-east-1.localhost:4566/documents/a%20b.html")
    assert rule_location(rules[1], "x/y.html", _request()) == (301, "http://example.com/x/y.html")
    assert rule_location(rules[2], "private/x", _request()) == (302, "https://site.s3-website-us-east-1.localhost:4566/login.html")
    no_condition = {"Redirect": {"ReplaceKeyPrefixWith": "v2/"}}
    assert rule_location(no_condition, "a.html", _request())[1].endswith("/v2/a.html")


def test_a_location_is_sent_as_a_url() -> None:
    response = redirect(301, "/a b\r\nSet-Cookie: x=1/é", "req")
    assert dict(response.headers)["Location"] == "/a%20b%0D%0ASet-Cookie:%20x=1/%C3%A9"


def test_error_page() -> None:
    error = NoSuchKey("The specified key does not exist.", Key="<script>.html")
    page = error_page(error, "req-1", NoSuchKey("The specified key does not exist.", Key="error.html"))
    text = page.body.decode()
    assert page.status == 404 and dict(page.headers)["Content-Type"] == "text/html; charset=utf-8"
    assert text.startswith("<html>\n<head><title>404 Not Found</title></head>\n<body>\n<h1>404 Not Found</h1>\n<ul>\n"
                           "<li>Code: NoSuchKey</li>\n<li>Message: The specified key does not exist.</li>\n"
                           "<li>Key: &lt;script&gt;.html</li>\n<li>RequestId: req-1</li>\n<li>HostId: ")
    assert text.endswith("</ul>\n<h3>An Error Occurred While Attempting to Retrieve a Custom Error Document</h3>\n"
                         "<ul>\n<li>Code: NoSuchKey</li>\n<li>Message: The specified key does not exist.</li>\n"
                         "<li>Key: error.html</li>\n</ul>\n<hr/>\n</body>\n</html>\n")
