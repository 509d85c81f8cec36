"""Browser-form uploads given malformed input (regression tests of the security review: each was a
500): a field that is not UTF-8, content-length-range bounds that are no numbers, a policy that is
not a JSON object."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from minicloud.services.s3 import post
from minicloud.services.s3.errors import InvalidPolicyDocument, MalformedPOSTRequest

NOW = datetime(2026, 1, 1, tzinfo=UTC)
EXPIRATION = "2030-01-01T00:00:00Z"


def test_a_field_that_is_not_utf8_is_a_malformed_post() -> None:
    body = (b'--X\r\nContent-Disposition: form-data; name="key"\r\n\r\n\xff\r\n'
            b'--X\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\nhi\r\n--X--\r\n')
    with pytest.raises(MalformedPOSTRequest):
        post.Form(body, "multipart/form-data; boundary=X")


@pytest.mark.parametrize("bounds", [["a", "10"], ["0", "ten"], [0, 1.5], [True, 10], [None, 10], ["-1", "10"],
                                    [0, {"n": 1}], ["\u00b2", "10"]])
def test_content_length_range_bounds_must_be_whole_numbers(bounds: list[Any]) -> None:
    policy = {"expiration": EXPIRATION, "conditions": [["content-length-range", *bounds]]}
    with pytest.raises(InvalidPolicyDocument):
        post.check_policy(policy, {"key": "k"}, "b", 2, NOW)


def test_content_length_range_numbers_and_digit_strings() -> None:
    for bounds in ([0, 10], ["0", "10"]):
        post.check_policy({"expiration": EXPIRATION, "conditions": [["content-length-range", *bounds],
                                                                   ["starts-with", "$key", ""]]},
                          {"key": "k"}, "b", 2, NOW)


@pytest.mark.parametrize("policy", [[], "text", 7, None])
def test_a_policy_that_is_not_an_object(policy: Any) -> None:
    with pytest.raises(InvalidPolicyDocument):
        post.check_policy(policy, {"key": "k"}, "b", 2, NOW)
