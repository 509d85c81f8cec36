"""parse_form answers what urllib's parse_qsl answers, for every form-encoded text."""

from urllib.parse import parse_qsl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minicloud.aws.forms import parse_form


def _reference(text: str) -> list[tuple[str, str]] | type[Exception]:
    try:
        return parse_qsl(text, keep_blank_values=True, errors="strict")
    except ValueError as exc:
        return type(exc)


def _ours(text: str) -> list[tuple[str, str]] | type[Exception]:
    try:
        return parse_form(text)
    except ValueError as exc:
        return type(exc)


@pytest.mark.parametrize("text", [
    "", "Action=ListUsers&Version=2010-05-08", "a", "a=", "=b", "&&a=1&&", "a=1=2", "a=b+c", "a=%20%2B",
    "a=%zz", "a=%ff", "k=v;w=x", "Tags.member.1.Key=k&Tags.member.1.Value=", "x=caf%C3%A9",
])
def test_examples(text: str) -> None:
    assert _ours(text) == _reference(text)


@given(st.text(alphabet="ab=&+%;2Fcé0", max_size=40))
def test_same_as_parse_qsl(text: str) -> None:
    assert _ours(text) == _reference(text)
