"""The canonical header block and the Authorization header parse, against their definitions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minicloud.aws.auth import sigv4
from minicloud.aws.auth.canonical import canonical_headers
from minicloud.aws.auth.failures import AuthFailure
from minicloud.aws.request import AwsRequest, Headers


def _by_definition(headers: list[tuple[str, str]], signed: tuple[str, ...]) -> str:
    """SigV4: for each signed name, every value received (in order) trimmed, inner runs of
    whitespace collapsed, joined with commas."""
    lines = []
    for name in signed:
        values = [" ".join(v.split()) for k, v in headers if k.lower() == name.lower()]
        lines.append(f"{name.lower()}:{','.join(values)}\n")
    return "".join(lines)


_names = st.sampled_from(["host", "x-amz-date", "content-type", "x-amz-meta-a", "X-Amz-Meta-A"])
_values = st.text(alphabet="ab \t1:;,", max_size=8)


@given(st.lists(st.tuples(_names, _values), max_size=6),
       st.lists(st.sampled_from(["host", "x-amz-date", "content-type", "x-amz-meta-a"]), min_size=1,
                max_size=4, unique=True))
def test_as_defined(headers: list[tuple[str, str]], signed: list[str]) -> None:
    request = AwsRequest(method="GET", path="/", headers=Headers(headers))
    assert canonical_headers(request, tuple(signed)) == _by_definition(headers, tuple(signed))


SIGNED = ("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261129/us-east-1/iam/aws4_request, "
          "SignedHeaders=content-type;host;x-amz-date, Signature=")


@pytest.mark.parametrize("header, signature", [
    (SIGNED + "ab12", "ab12"),
    (SIGNED + "cd34  ", "cd34"),
    (SIGNED.replace(", ", ",") + "ef56", "ef56"),  # no space after the commas: the general parse
])
def test_the_signature_is_read_from_each_header(header: str, signature: str) -> None:
    for _ in range(2):  # the second time from the memo of the header's prefix
        auth = sigv4._parse_header(header, {"x-amz-date": "20261129T120000Z"})
        assert auth.signature == signature
        assert auth.signed_headers == ("content-type", "host", "x-amz-date")
        assert (auth.access_key_id, auth.region, auth.service) == ("AKIDEXAMPLE", "us-east-1", "iam")


def test_a_bad_field_before_the_signature_is_refused_every_time() -> None:
    header = SIGNED.replace("SignedHeaders=", "SignedHeaders") + "ab12"
    for _ in range(2):
        with pytest.raises(AuthFailure) as failure:
            sigv4._parse_header(header, {"x-amz-date": "20261129T120000Z"})
        assert "missing equal-sign" in str(failure.value)
