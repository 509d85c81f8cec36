"""aws-chunked upload bodies: the AWS documentation's own examples, botocore's unsigned trailer
bodies, and bodies framed here by the spec, fed in arbitrary pieces."""

from __future__ import annotations

import base64
import hashlib
import hmac
import zlib
from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minicloud.aws import sigv4
from minicloud.aws.request import AwsRequest, Headers
from minicloud.aws.sigv4 import AuthFailure, AuthFailureKind, ChunkedPayloadDecoder, SigningContext
from tests.unit.aws.test_sigv4 import SECRET, capture, check, client

K = AuthFailureKind

# -- the AWS documentation's examples ("Signature Calculations for the Authorization Header:
#    Transferring Payload in Multiple Chunks" and "... Including Trailing Headers") -----------------
DOC_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
DOC_STAMP = "20130524T000000Z"
DOC_SCOPE = "20130524/us-east-1/s3/aws4_request"
DOC_DATA = b"a" * 66560
DOC_SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
DOC_CHUNK_SIGNATURES = ("ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
                        "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
                        "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9")
DOC_TRAILER_SEED = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e"
DOC_TRAILER_CHUNK_SIGNATURES = ("b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2",
                                "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7",
                                "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992")
DOC_TRAILER_SIGNATURE = "d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435"


def doc_request() -> AwsRequest:
    authorization = (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
        "SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
        f"x-amz-decoded-content-length;x-amz-storage-class,Signature={DOC_SEED}")
    return AwsRequest("PUT", "/examplebucket/chunkObject.txt", headers=Headers([
        ("Host", "s3.amazonaws.com"), ("x-amz-date", DOC_STAMP),
        ("x-amz-storage-class", "REDUCED_REDUNDANCY"), ("Authorization", authorization),
        ("x-amz-content-sha256", sigv4.STREAMING_PAYLOAD), ("Content-Encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", "66560"), ("Content-Length", "66824")]))


def doc_body(signatures: Iterable[str] = DOC_CHUNK_SIGNATURES, trailer: bytes = b"") -> bytes:
    first, second, last = signatures
    return (b"10000;chunk-signature=" + first.encode() + b"\r\n" + DOC_DATA[:65536] + b"\r\n"
            + b"400;chunk-signature=" + second.encode() + b"\r\n" + DOC_DATA[65536:] + b"\r\n"
            + b"0;chunk-signature=" + last.encode() + b"\r\n" + trailer + b"\r\n")


def doc_context(seed: str) -> SigningContext:
    return SigningContext(sigv4.signing_key(DOC_SECRET, "20130524", "us-east-1", "s3"), DOC_STAMP,
                          DOC_SCOPE, seed)


def doc_trailer_body(trailer_value: bytes = b"sOO8/Q==", signature: str = DOC_TRAILER_SIGNATURE) -> bytes:
    trailer = (b"x-amz-checksum-crc32c:" + trailer_value + b"\r\n"
               + b"x-amz-trailer-signature:" + signature.encode() + b"\r\n")
    return doc_body(DOC_TRAILER_CHUNK_SIGNATURES, trailer)


def decode(decoder: ChunkedPayloadDecoder, body: bytes,
           cuts: Iterable[int] = ()) -> tuple[bytes, dict[str, str]]:
    out, last = [], 0
    for cut in sorted({c for c in cuts if 0 < c < len(body)}):
        out.append(decoder.feed(body[last:cut]))
        last = cut
    out.append(decoder.feed(body[last:]))
    return b"".join(out), decoder.finish()


def failure_of(decoder: ChunkedPayloadDecoder, body: bytes, cuts: Iterable[int] = ()) -> AuthFailure:
    with pytest.raises(AuthFailure) as caught:
        decode(decoder, body, cuts)
    return caught.value


def test_documented_seed_signature_verifies() -> None:
    request = doc_request()
    auth = sigv4.parse_auth(request)
    assert auth is not None
    sigv4.verify(request, auth, DOC_SECRET, auth.date)
    assert auth.payload_hash == sigv4.STREAMING_PAYLOAD


@settings(max_examples=50, deadline=None)
@given(cuts=st.lists(st.integers(min_value=1, max_value=66823), max_size=12))
def test_documented_chunked_upload_decodes_split_anywhere(cuts: list[int]) -> None:
    request = doc_request()
    auth = sigv4.parse_auth(request)
    decoder = ChunkedPayloadDecoder.for_request(request, auth, DOC_SECRET)
    assert decoder is not None
    body = doc_body()
    assert len(body) == 66824  # the documented Content-Length
    assert decode(decoder, body, cuts) == (DOC_DATA, {})


@settings(max_examples=50, deadline=None)
@given(cuts=st.lists(st.integers(min_value=1, max_value=67000), max_size=12))
def test_documented_signed_trailer_decodes_split_anywhere(cuts: list[int]) -> None:
    decoder = ChunkedPayloadDecoder(sigv4.STREAMING_PAYLOAD_TRAILER, decoded_length=66560,
                                    signing=doc_context(DOC_TRAILER_SEED),
                                    trailers=["x-amz-checksum-crc32c"])
    assert decode(decoder, doc_trailer_body(), cuts) == (DOC_DATA, {"x-amz-checksum-crc32c": "sOO8/Q=="})


@pytest.mark.parametrize("index", [0, 1, 2])
def test_any_documented_chunk_signature_changed_is_refused(index: int) -> None:
    signatures = list(DOC_CHUNK_SIGNATURES)
    signatures[index] = signatures[index][:-1] + ("0" if signatures[index][-1] != "0" else "1")
    decoder = ChunkedPayloadDecoder(sigv4.STREAMING_PAYLOAD, decoded_length=66560,
                                    signing=doc_context(DOC_SEED))
    assert failure_of(decoder, doc_body(signatures)).kind is K.BAD_SIGNATURE


def test_documented_trailer_changed_is_refused() -> None:
    def decoder() -> ChunkedPayloadDecoder:
        return ChunkedPayloadDecoder(sigv4.STREAMING_PAYLOAD_TRAILER, decoded_length=66560,
                                     signing=doc_context(DOC_TRAILER_SEED),
                                     trailers=["x-amz-checksum-crc32c"])
    assert failure_of(decoder(), doc_trailer_body(b"sOO8/A==")).kind is K.BAD_SIGNATURE
    assert failure_of(decoder(), doc_trailer_body(signature="0" * 64)).kind is K.BAD_SIGNATURE
    unsigned = doc_trailer_body().replace(b"x-amz-trailer-signature:" + DOC_TRAILER_SIGNATURE.encode()
                                          + b"\r\n", b"")
    assert failure_of(decoder(), unsigned).kind is K.MALFORMED_BODY


# -- a spec encoder for signed chunks, held to the documented bytes --------------------------------

def frame_signed(data: bytes, chunk_size: int, context: SigningContext, *,
                 trailers: dict[str, str] | None = None) -> bytes:
    """Frame ``data`` as AWS specifies signed chunks (written from the spec, independently)."""
    previous = context.seed_signature

    def sign(kind: str, payload_hash: str) -> str:
        nonlocal previous
        text = f"AWS4-HMAC-SHA256-{kind}\n{context.timestamp}\n{context.scope}\n{previous}\n{payload_hash}"
        previous = hmac.new(context.key, text.encode(), hashlib.sha256).hexdigest()
        return previous

    empty = hashlib.sha256(b"").hexdigest()
    pieces = [data[i:i + chunk_size] for i in range(0, len(data), chunk_size)] + [b""]
    out = []
    for piece in pieces:
        signature = sign("PAYLOAD", f"{empty}\n{hashlib.sha256(piece).hexdigest()}")
        out.append(f"{len(piece):x};chunk-signature={signature}\r\n".encode() + piece)
        if piece:
            out.append(b"\r\n")
    if trailers is None:
        return b"".join(out) + b"\r\n"
    lines = "".join(f"{name}:{value}\n" for name, value in trailers.items())
    signature = sign("TRAILER", hashlib.sha256(lines.encode()).hexdigest())
    wire = "".join(f"{name}:{value}\r\n" for name, value in trailers.items())
    return b"".join(out) + f"{wire}x-amz-trailer-signature:{signature}\r\n\r\n".encode()


def test_spec_encoder_reproduces_the_documented_bodies() -> None:
    assert frame_signed(DOC_DATA, 65536, doc_context(DOC_SEED)) == doc_body()
    assert frame_signed(DOC_DATA, 65536, doc_context(DOC_TRAILER_SEED),
                        trailers={"x-amz-checksum-crc32c": "sOO8/Q=="}) == doc_trailer_body()


CONTEXT = SigningContext(sigv4.signing_key(SECRET, "20261129", "us-east-1", "s3"), "20261129T051000Z",
                         "20261129/us-east-1/s3/aws4_request", "5" * 64)


def signed_decoder(length: int | None, trailers: Iterable[str] | None = None,
                   mode: str = sigv4.STREAMING_PAYLOAD) -> ChunkedPayloadDecoder:
    return ChunkedPayloadDecoder(mode, decoded_length=length, signing=CONTEXT, trailers=trailers)


@settings(max_examples=80, deadline=None)
@given(data=st.binary(max_size=3000), chunk_size=st.integers(min_value=1, max_value=1200),
       cuts=st.lists(st.integers(min_value=1, max_value=6000), max_size=8))
def test_signed_chunks_of_any_size_split_anywhere(data: bytes, chunk_size: int, cuts: list[int]) -> None:
    body = frame_signed(data, chunk_size, CONTEXT)
    assert decode(signed_decoder(len(data)), body, cuts) == (data, {})
    trailers = {"x-amz-checksum-sha256": base64.b64encode(hashlib.sha256(data).digest()).decode()}
    body = frame_signed(data, chunk_size, CONTEXT, trailers=trailers)
    decoder = signed_decoder(len(data), trailers, sigv4.STREAMING_PAYLOAD_TRAILER)
    assert decode(decoder, body, cuts) == (data, trailers)


@settings(max_examples=80, deadline=None)
@given(data=st.binary(min_size=1, max_size=2000), position=st.integers(min_value=0))
def test_any_flipped_byte_is_refused(data: bytes, position: int) -> None:
    body = bytearray(frame_signed(data, 500, CONTEXT))
    position %= len(body)
    body[position] ^= 0x01
    failure = failure_of(signed_decoder(len(data)), bytes(body))
    assert failure.kind in (K.BAD_SIGNATURE, K.MALFORMED_BODY, K.INCOMPLETE_BODY)


def test_chunks_swapped_are_refused() -> None:
    data = bytes(range(256)) * 8
    body = frame_signed(data, 512, CONTEXT)
    chunks = body.split(b"200;chunk-signature=")
    swapped = b"200;chunk-signature=".join([chunks[0], chunks[2], chunks[1], *chunks[3:]])
    assert failure_of(signed_decoder(len(data)), swapped).kind is K.BAD_SIGNATURE


@settings(max_examples=80, deadline=None)
@given(data=st.binary(max_size=2000), cut=st.integers(min_value=0))
def test_truncated_body_is_incomplete(data: bytes, cut: int) -> None:
    body = frame_signed(data, 300, CONTEXT)
    cut %= len(body)
    decoder = signed_decoder(len(data))
    decoder.feed(body[:cut])
    with pytest.raises(AuthFailure) as caught:
        decoder.finish()
    assert caught.value.kind is K.INCOMPLETE_BODY


def test_decoded_length_is_held_to() -> None:
    data = b"x" * 1000
    body = frame_signed(data, 300, CONTEXT)
    assert failure_of(signed_decoder(999), body).kind is K.INCOMPLETE_BODY
    assert failure_of(signed_decoder(1001), body).kind is K.INCOMPLETE_BODY
    assert decode(signed_decoder(None), body)[0] == data


def test_framing_errors() -> None:
    data = b"y" * 100
    body = frame_signed(data, 64, CONTEXT)
    cases = {
        "not hex": b"zz" + body,
        "no signature": body.replace(body[2:84], b"", 1),
        "bare LF": body.replace(b"\r\n", b"\n", 1),
        "data not followed by CRLF": body.replace(b"y\r\n", b"yy\n", 1),
        "after the end": body + b"extra",
        "endless line": b"4" * 5000,
    }
    for name, broken in cases.items():
        assert failure_of(signed_decoder(len(data)), broken).kind is K.MALFORMED_BODY, name


def test_failures_are_sticky_and_output_is_never_ahead_of_the_input() -> None:
    data = b"z" * 2000
    body = bytearray(frame_signed(data, 1000, CONTEXT))
    body[1200] ^= 1  # inside the second chunk
    decoder = signed_decoder(len(data))
    first = decoder.feed(bytes(body[:1100]))
    assert first == data[:len(first)] and len(first) <= 1100
    with pytest.raises(AuthFailure):
        decoder.feed(bytes(body[1100:]))
    with pytest.raises(AuthFailure):
        decoder.feed(b"")
    with pytest.raises(AuthFailure):
        decoder.finish()


# -- STREAMING-UNSIGNED-PAYLOAD-TRAILER, as botocore sends it --------------------------------------

def botocore_trailer_upload(data: bytes) -> AwsRequest:
    s3 = client("s3", endpoint="https://127.0.0.1:4566")
    return capture(s3.put_object, Bucket="bucket", Key="big file.bin", Body=data)


@pytest.mark.parametrize("size", [0, 1, 65536, 1024 * 1024 + 17])
def test_botocore_unsigned_trailer_upload(size: int) -> None:
    data = bytes(i % 251 for i in range(size))
    request = botocore_trailer_upload(data)
    assert request.headers.get("x-amz-content-sha256") == sigv4.STREAMING_UNSIGNED_PAYLOAD_TRAILER
    assert request.headers.get("content-encoding") == "aws-chunked"
    auth = check(request)
    decoder = ChunkedPayloadDecoder.for_request(request, auth, SECRET)
    assert decoder is not None and not decoder.signed
    cuts = range(7, len(request.body), 4099)
    decoded, trailers = decode(decoder, request.body, cuts)
    assert decoded == data
    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    assert trailers == {"x-amz-checksum-crc32": crc}


def test_unsigned_trailer_refusals() -> None:
    data = b"q" * 5000
    request = botocore_trailer_upload(data)
    auth = check(request)

    def decoder() -> ChunkedPayloadDecoder:
        made = ChunkedPayloadDecoder.for_request(request, auth, SECRET)
        assert made is not None
        return made

    body = request.body
    missing = body[:body.index(b"x-amz-checksum-crc32:")] + b"\r\n"
    assert failure_of(decoder(), missing).kind is K.MALFORMED_BODY
    undeclared = body.replace(b"x-amz-checksum-crc32:", b"x-amz-checksum-sha1:")
    assert failure_of(decoder(), undeclared).kind is K.MALFORMED_BODY
    signed_trailer = body.replace(b"\r\n\r\n", b"\r\nx-amz-trailer-signature:" + b"0" * 64 + b"\r\n\r\n")
    assert failure_of(decoder(), signed_trailer).kind is K.MALFORMED_BODY
    assert failure_of(decoder(), body[:-2]).kind is K.INCOMPLETE_BODY


def test_unsigned_body_may_end_right_after_the_last_chunk() -> None:
    """What an SDK sends when it has no checksum to add: ``0\\r\\n`` and the end of the body."""
    decoder = ChunkedPayloadDecoder(sigv4.STREAMING_UNSIGNED_PAYLOAD_TRAILER, decoded_length=3, trailers=())
    assert decode(decoder, b"3\r\nabc\r\n0\r\n") == (b"abc", {})


def test_for_request() -> None:
    plain = capture(client("s3").put_object, Bucket="b", Key="k", Body=b"x")
    assert ChunkedPayloadDecoder.for_request(plain, check(plain), SECRET) is None
    request = doc_request()
    request.headers.set("x-amz-decoded-content-length", "12x")
    with pytest.raises(AuthFailure) as caught:
        ChunkedPayloadDecoder.for_request(request, sigv4.parse_auth(request), DOC_SECRET)
    assert caught.value.kind is K.MALFORMED_BODY
    request = AwsRequest("PUT", "/b/k", headers=Headers([("x-amz-content-sha256", sigv4.STREAMING_PAYLOAD)]))
    with pytest.raises(AuthFailure) as caught:
        ChunkedPayloadDecoder.for_request(request, None, None)
    assert caught.value.kind is K.MISSING_CONTENT_LENGTH
    with pytest.raises(ValueError, match="signing context"):
        ChunkedPayloadDecoder(sigv4.STREAMING_PAYLOAD)
