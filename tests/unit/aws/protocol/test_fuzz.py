"""Fuzz: whatever arrives on the wire, a parser answers with a ServiceError or a result, never
with any other exception."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import string
from collections import Counter
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minicloud.aws.errors import ServiceError
from minicloud.aws.protocol import cbor
from minicloud.aws.protocol.models import load_service_model
from minicloud.aws.protocol.parsers import create_parser
from minicloud.aws.protocol.serializers import create_serializer
from minicloud.aws.protocol.validate import validate
from minicloud.aws.request import AwsRequest, Headers
from tests.unit.aws.protocol.roundtrip import SERVICES, protocols_of
from tests.unit.aws.protocol.shapegen import operation_ctx, sample
from tests.unit.aws.protocol.wire import client_request

CASES = [(service, protocol) for service in SERVICES for protocol in protocols_of(service)]
_SETTINGS = settings(max_examples=150, deadline=None, database=None,
                     suppress_health_check=[HealthCheck.too_slow])

_TOKENS = ["Action", "Version", "member", "entry", "key", "value", "1", "2", "0", "-1", "99999999999",
           ".", "=", "&", "%", "%ZZ", "%FF", "%00", "+", "[", "{", "}", "\"", "<", ">", "/", "?",
           "true", "1e999", "NaN", "2020-01-01T00:00:00Z", "AAAA", "====", "\x00", "é", "😀"]


def _wordy(model_words: list[str]) -> st.SearchStrategy[str]:
    """Text built from the model's own names and protocol tokens: reaches deep into the
    parsers, where plain random text stops at the first lookup."""
    pieces = st.sampled_from(model_words + _TOKENS) | st.text(max_size=4)
    return st.lists(pieces, max_size=12).map("".join)


def _model_words(service: str) -> list[str]:
    model = load_service_model(service)
    words = set(model.operation_names[:80])
    for name in list(model.operation_names)[:40]:
        shape = model.operation_model(name).input_shape
        if shape is not None:
            for member_name, member in shape.members.items():
                words.add(member_name)
                words.add(str(member.serialization.get("name", member_name)))
    words.add(str(model.metadata.get("targetPrefix", "")) + ".")
    return sorted(words)


def _request(service: str, protocol: str) -> st.SearchStrategy[AwsRequest]:
    model = load_service_model(service)
    words = _model_words(service)
    text = _wordy(words)
    target = st.sampled_from(model.operation_names).map(
        lambda op: f"{model.metadata.get('targetPrefix', '')}.{op}") | text
    uris = [str(model.operation_model(op).http.get("requestUri", "/")) for op in model.operation_names]
    path = st.sampled_from(uris).map(lambda uri: uri.split("?")[0].replace("{", "").replace("}", "")
                                     .replace("+", "")) | text.map(lambda t: "/" + t)
    header_names = st.sampled_from(["content-type", "x-amz-target", "smithy-protocol", "x-amz-meta-a",
                                    "x-amz-copy-source", "content-length", "x-amz-date", "range",
                                    "x-amz-object-lock-retain-until-date", "x-amz-tagging"])
    headers = st.lists(st.tuples(header_names, text | target), max_size=5)
    form = st.lists(st.tuples(_wordy(words), text), max_size=8).map(
        lambda pairs: "&".join(f"{k}={v}" for k, v in pairs))
    json_body = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | text,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(words) | text,
                                                                    inner, max_size=4),
        max_leaves=12,
    )
    bodies = st.one_of(
        st.binary(max_size=64),
        form.map(lambda f: f.encode("utf-8", "surrogatepass")),
        json_body.map(lambda v: _json_bytes(v)),
        json_body.map(lambda v: _cbor_bytes(v)),
        st.lists(st.sampled_from([*words, "<", ">", "</", "/>", "<?xml ", "&amp;", "&#1;", "<!DOCTYPE"]),
                 max_size=12).map(lambda parts: "".join(parts).encode("utf-8")),
    )
    return st.builds(
        lambda method, p, query, hs, body: AwsRequest(method=method, path=p, query=query,
                                                      headers=Headers(hs), body=body),
        st.sampled_from(["GET", "PUT", "POST", "DELETE", "HEAD", "PATCH"]),
        path,
        form | st.text(string.printable, max_size=20),
        headers,
        bodies,
    )


def _json_bytes(value: object) -> bytes:
    try:
        return json.dumps(value).encode("utf-8", "surrogatepass")
    except (ValueError, TypeError):
        return b"{"


def _cbor_bytes(value: object) -> bytes:
    try:
        return cbor.encode(value)
    except (ValueError, OverflowError):
        return b"\xbf"


@functools.cache
def _valid_requests(service: str, protocol: str) -> list[AwsRequest]:
    """One well-formed request per operation (every member set): the seeds the mutations start from."""
    model = load_service_model(service)
    found = []
    for name in sorted(model.operation_names):
        operation = model.operation_model(name)
        if operation.has_event_stream_input:
            continue
        ctx = operation_ctx(operation, protocol, "in")
        params = sample(operation.input_shape, ctx) if operation.input_shape is not None else {}
        found.append(client_request(operation, params, protocol))
    return found


def _rarely(data: st.DataObject, one_in: int) -> bool:
    """True about once in ``one_in`` draws (hypothesis favours small integers and first choices:
    the rare outcome is put last)."""
    return bool(data.draw(st.sampled_from([False] * (one_in - 1) + [True])))


_JUNK = st.sampled_from(_TOKENS) | st.text(max_size=6)
_JSON_JUNK = st.none() | st.booleans() | st.integers() | st.floats() | _JUNK | st.just([]) | st.just({})


def _mutate_form(data: st.DataObject, text: str) -> str:
    pairs = [pair.split("=", 1) for pair in text.split("&")]
    out = []
    for pair in pairs:
        if _rarely(data, 10):
            continue
        key = pair[0]
        value = pair[1] if len(pair) > 1 else ""
        if _rarely(data, 4):
            value = quote(data.draw(_JUNK), safe="")
        if _rarely(data, 8):
            key = key.rsplit(".", 1)[0] + "." + data.draw(_JUNK)
        out.append(f"{key}={value}")
    return "&".join(out)


def _mutate_json(data: st.DataObject, value: object, depth: int = 0) -> object:
    if _rarely(data, 10) or depth > 6:
        return data.draw(_JSON_JUNK)
    if isinstance(value, dict):
        return {k: _mutate_json(data, v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_mutate_json(data, v, depth + 1) for v in value]
    return value


def _mutate(data: st.DataObject, seed: AwsRequest, protocol: str) -> AwsRequest:
    headers = Headers((k, data.draw(_JUNK) if _rarely(data, 5) else v)
                      for k, v in seed.headers.items()
                      if k not in ("x-amz-target", "smithy-protocol") or not _rarely(data, 20))
    body = seed.body
    if _rarely(data, 6):
        body = body[:data.draw(st.integers(0, len(body)))]
    elif protocol in ("query", "ec2"):
        body = _mutate_form(data, body.decode("utf-8")).encode("utf-8")
    elif protocol in ("json", "rest-json") and body[:1] == b"{":
        body = _json_bytes(_mutate_json(data, json.loads(body)))
    elif protocol == "smithy-rpc-v2-cbor" and body:
        body = _cbor_bytes(_mutate_json(data, cbor.decode(body)))
    elif protocol == "rest-xml" and body[:1] == b"<":
        text = body.decode("utf-8")
        cut = data.draw(st.integers(0, len(text)))
        body = (text[:cut] + data.draw(_JUNK) + text[cut:]).encode("utf-8")
    path = seed.path
    if _rarely(data, 5):
        segments = path.split("/")
        index = data.draw(st.integers(0, len(segments) - 1))
        segments[index] = quote(data.draw(_JUNK), safe="%")
        path = "/".join(segments)
    query = _mutate_form(data, seed.query) if seed.query else seed.query
    return AwsRequest(method=seed.method, path=path, query=query, headers=headers, body=body)


@pytest.mark.parametrize(("service", "protocol"), CASES)
def test_parsers_raise_only_service_errors(service: str, protocol: str,
                                           caplog: pytest.LogCaptureFixture) -> None:
    model = load_service_model(service)
    parser = create_parser(model, protocol)
    seeds = _valid_requests(service, protocol)
    outcomes: Counter[str] = Counter()

    @_SETTINGS
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        if _rarely(data, 5):
            request = data.draw(_request(service, protocol), label="random request")
        else:
            seed = seeds[data.draw(st.integers(0, 2**32)) % len(seeds)]
            request = _mutate(data, seed, protocol)
        try:
            operation, params = parser.parse(request)
        except ServiceError as exc:
            outcomes[type(exc).__name__] += 1
            return
        outcomes["parsed"] += 1
        try:
            validate(operation, params, protocol)
        except ServiceError:
            return

    with caplog.at_level(logging.WARNING, logger="minicloud.aws.protocol"):
        run()
    # the parsers' last-resort handler (anything unexpected) was never needed
    assert not [r for r in caplog.records if "unexpected error" in r.getMessage()]
    assert outcomes["parsed"] > 0, outcomes


@settings(max_examples=300, deadline=None, database=None)
@given(st.binary(max_size=80))
def test_cbor_decoder_raises_only_value_errors(data: bytes) -> None:
    with contextlib.suppress(ValueError):
        cbor.decode(data)


_ANY = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5) | st.binary(max_size=5)
    | st.datetimes(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)


@pytest.mark.parametrize(("service", "protocol"), CASES)
def test_serializers_never_raise_on_results_that_do_not_fit(service: str, protocol: str) -> None:
    """A provider bug (a result of the wrong shape) is answered as InternalFailure, never raised."""
    model = load_service_model(service)
    serializer = create_serializer(model, protocol)
    names = sorted(model.operation_names)

    @settings(max_examples=60, deadline=None, database=None)
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        operation = model.operation_model(names[data.draw(st.integers(0, 2**32)) % len(names)])
        shape = operation.output_shape
        keys = st.sampled_from(sorted(shape.members)) if shape is not None and shape.members else st.text()
        result = data.draw(st.dictionaries(keys, _ANY, max_size=4))
        response = serializer.serialize_result(operation, result, "rid")
        assert response.status == 500 or 200 <= response.status < 300

    run()
