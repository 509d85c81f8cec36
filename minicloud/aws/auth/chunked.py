"""The ``aws-chunked`` upload body of S3, decoded incrementally with bounded memory.

    10000;chunk-signature=<64 hex>\\r\\n<65536 bytes>\\r\\n    signed chunk (STREAMING-AWS4-HMAC-SHA256-*)
    400\\r\\n<1024 bytes>\\r\\n                                 unsigned (STREAMING-UNSIGNED-PAYLOAD-TRAILER)
    0;chunk-signature=<64 hex>\\r\\n                           the last chunk: no data
    x-amz-checksum-crc32:<base64>\\r\\n                        trailers (the *-TRAILER modes)
    x-amz-trailer-signature:<64 hex>\\r\\n                     (the signed trailer mode only)
    \\r\\n

Each chunk signature signs ``AWS4-HMAC-SHA256-PAYLOAD``, the request time and scope, the previous
signature (the request's own signature for the first chunk), the hash of nothing and the hash of
the chunk's data; the trailer signature signs ``AWS4-HMAC-SHA256-TRAILER`` and the hash of the
trailer lines. ``feed`` returns data as soon as it arrives, before the chunk that carries it is
verified: a caller keeps what it gets provisional (a temporary file) until ``finish`` returns.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from minicloud.aws.auth.failures import AuthFailure, AuthFailureKind
from minicloud.aws.auth.sigv4 import (
    EMPTY_SHA256,
    STREAMING_PAYLOAD,
    STREAMING_PAYLOAD_TRAILER,
    STREAMING_PAYLOADS,
    SigningContext,
    SigV4Auth,
    hmac_sha256,
    streaming_context,
)
from minicloud.aws.request import AwsRequest

MAX_LINE = 4096            # a chunk header or trailer line, CRLF included
MAX_TRAILER_BYTES = 16384  # all trailer lines together

_HEADER, _DATA, _DATA_CRLF, _TRAILER, _FINAL_CRLF, _DONE = range(6)
_HEX = frozenset(b"0123456789abcdefABCDEF")


class ChunkedPayloadDecoder:
    """Decode one ``aws-chunked`` body: ``feed`` it bytes as they arrive, then ``finish``.

    Raises ``AuthFailure``: BAD_SIGNATURE (a chunk or the trailer is not signed right),
    INCOMPLETE_BODY (cut short, or not ``x-amz-decoded-content-length`` bytes), MALFORMED_BODY
    (framing, trailers not declared in ``x-amz-trailer``). After a failure every call fails again.
    """

    def __init__(self, mode: str, *, decoded_length: int | None = None,
                 signing: SigningContext | None = None,
                 trailers: Iterable[str] | None = None) -> None:
        if mode not in STREAMING_PAYLOADS:
            raise ValueError(f"not a streaming payload: {mode}")
        self.mode = mode
        self.signed = mode in (STREAMING_PAYLOAD, STREAMING_PAYLOAD_TRAILER)
        self.with_trailer = mode != STREAMING_PAYLOAD
        if self.signed and signing is None:
            raise ValueError(f"{mode} needs the request's signing context")
        self._signing = signing
        self._previous = signing.seed_signature if signing else ""
        self._decoded_length = decoded_length
        self._declared = None if trailers is None else {t.strip().lower() for t in trailers if t.strip()}
        self._state = _HEADER
        self._line = bytearray()
        self._remaining = 0
        self._crlf = 0
        self._chunk_signature = ""
        self._hasher = hashlib.sha256()
        self._trailers: dict[str, str] = {}
        self._trailer_lines: list[str] = []
        self._trailer_signature: str | None = None
        self._trailer_bytes = 0
        self._failure: AuthFailure | None = None
        self.decoded = 0

    @classmethod
    def for_request(cls, request: AwsRequest, auth: SigV4Auth | None,
                    secret_access_key: str | None) -> ChunkedPayloadDecoder | None:
        """The decoder for a (verified) request's body, or None if the body is not aws-chunked."""
        mode = auth.payload_hash if auth else request.headers.get("x-amz-content-sha256")
        if mode not in STREAMING_PAYLOADS:
            return None
        signed = mode in (STREAMING_PAYLOAD, STREAMING_PAYLOAD_TRAILER)
        raw_length = request.headers.get("x-amz-decoded-content-length")
        length: int | None = None
        if raw_length is not None:
            if not raw_length.strip().isdigit():
                raise AuthFailure(AuthFailureKind.MALFORMED_BODY,
                                  "x-amz-decoded-content-length must be a number of bytes.")
            length = int(raw_length)
        elif signed:
            raise AuthFailure(AuthFailureKind.MISSING_CONTENT_LENGTH,
                              "You must provide the Content-Length HTTP header.")
        signing = None
        if signed:
            if auth is None or secret_access_key is None:
                raise AuthFailure(AuthFailureKind.MISSING_AUTH, f"{mode} needs a signed request.")
            signing = streaming_context(auth, secret_access_key)
        declared = request.headers.get("x-amz-trailer")
        return cls(mode, decoded_length=length, signing=signing,
                   trailers=declared.split(",") if declared else ())

    @property
    def done(self) -> bool:
        return self._state == _DONE

    # -- feeding -----------------------------------------------------------------------------------
    def feed(self, data: bytes) -> bytes:
        """Take the next bytes of the body; return the payload bytes they complete (maybe none)."""
        if self._failure is not None:
            raise self._failure
        try:
            return self._feed(bytes(data) if not isinstance(data, bytes) else data)
        except AuthFailure as failure:
            self._failure = failure
            raise

    def finish(self) -> dict[str, str]:
        """The body ended: check it was whole; return its trailers (``x-amz-checksum-*`` ...)."""
        if self._failure is not None:
            raise self._failure
        try:
            self._finish()
        except AuthFailure as failure:
            self._failure = failure
            raise
        return dict(self._trailers)

    def _feed(self, data: bytes) -> bytes:
        view = memoryview(data)
        out: list[memoryview] = []
        pos, end = 0, len(data)
        while pos < end:
            state = self._state
            if state == _DATA:
                take = min(self._remaining, end - pos)
                piece = view[pos:pos + take]
                if self.signed:
                    self._hasher.update(piece)
                out.append(piece)
                pos += take
                self._remaining -= take
                self.decoded += take
                if self._decoded_length is not None and self.decoded > self._decoded_length:
                    raise _incomplete("The body is longer than x-amz-decoded-content-length.")
                if self._remaining == 0:
                    self._verify_chunk()
                    self._state, self._crlf = _DATA_CRLF, 0
            elif state in (_DATA_CRLF, _FINAL_CRLF):
                if view[pos] != b"\r\n"[self._crlf]:
                    raise _malformed("A chunk's data must end with CRLF.")
                pos += 1
                self._crlf += 1
                if self._crlf == 2:
                    self._state = _HEADER if state == _DATA_CRLF else _DONE
            elif state == _DONE:
                raise _malformed("There is data after the final chunk.")
            else:
                line, pos = self._take_line(data, pos, end)
                if line is not None:
                    if state == _HEADER:
                        self._on_header(line)
                    else:
                        self._on_trailer(line)
        return b"".join(out)

    def _take_line(self, data: bytes, pos: int, end: int) -> tuple[bytes | None, int]:
        """Accumulate up to LF; return the line without CRLF once it is whole."""
        limit = min(end, pos + MAX_LINE + 1 - len(self._line))
        newline = data.find(b"\n", pos, limit)
        if newline < 0:
            self._line += data[pos:limit]
            if len(self._line) > MAX_LINE:
                raise _malformed("A chunk header or trailer line is too long.")
            return None, limit
        self._line += data[pos:newline + 1]
        line = bytes(self._line)
        self._line.clear()
        if not line.endswith(b"\r\n"):
            raise _malformed("Chunk header and trailer lines must end with CRLF.")
        return line[:-2], newline + 1

    # -- chunk headers ------------------------------------------------------------------------------
    def _on_header(self, line: bytes) -> None:
        size_text, _, extensions = line.partition(b";")
        if not size_text or len(size_text) > 16 or not _HEX.issuperset(size_text):
            raise _malformed("A chunk must start with its size in hexadecimal.")
        size = int(size_text, 16)
        signature = ""
        for extension in extensions.split(b";") if extensions else ():
            name, _, value = extension.partition(b"=")
            if name.strip() == b"chunk-signature":
                signature = value.strip().decode("ascii", "replace")
        if self.signed and not signature:
            raise _malformed("Every chunk of a signed streaming upload needs a chunk-signature.")
        self._chunk_signature = signature
        self._hasher = hashlib.sha256()
        if size:
            self._state, self._remaining = _DATA, size
            return
        self._verify_chunk()  # the final, empty chunk
        self._state = _TRAILER if self.with_trailer else _FINAL_CRLF
        self._crlf = 0

    def _verify_chunk(self) -> None:
        if not self.signed:
            return
        context = self._signing
        assert context is not None
        string_to_sign = (f"AWS4-HMAC-SHA256-PAYLOAD\n{context.timestamp}\n{context.scope}\n"
                          f"{self._previous}\n{EMPTY_SHA256}\n{self._hasher.hexdigest()}")
        self._previous = _check(context.key, string_to_sign, self._chunk_signature)

    # -- trailers -----------------------------------------------------------------------------------
    def _on_trailer(self, line: bytes) -> None:
        if not line:
            self._end_of_trailers()
            return
        self._trailer_bytes += len(line) + 2
        if self._trailer_bytes > MAX_TRAILER_BYTES:
            raise _malformed("The trailers are too long.")
        name_bytes, colon, value_bytes = line.partition(b":")
        if not colon:
            raise _malformed("A trailer must be a 'name:value' line.")
        name = name_bytes.decode("ascii", "replace").strip().lower()
        value = value_bytes.decode("ascii", "replace").strip()
        if name == "x-amz-trailer-signature":
            if not self.signed:
                raise _malformed("An unsigned upload cannot carry x-amz-trailer-signature.")
            self._trailer_signature = value
            return
        if self._trailer_signature is not None:
            raise _malformed("x-amz-trailer-signature must be the last trailer.")
        if self._declared is not None and name not in self._declared:
            raise _malformed(f"The trailer {name} was not declared in x-amz-trailer.")
        self._trailers[name] = value
        self._trailer_lines.append(f"{name}:{value}\n")

    def _end_of_trailers(self) -> None:
        if self._declared:
            missing = sorted(self._declared - self._trailers.keys())
            if missing:
                raise _malformed(f"The trailer {missing[0]} declared in x-amz-trailer was not sent.")
        if self.signed:
            if self._trailer_signature is None:
                raise _malformed("A signed streaming upload with trailers needs x-amz-trailer-signature.")
            context = self._signing
            assert context is not None
            digest = hashlib.sha256("".join(self._trailer_lines).encode()).hexdigest()
            string_to_sign = (f"AWS4-HMAC-SHA256-TRAILER\n{context.timestamp}\n{context.scope}\n"
                              f"{self._previous}\n{digest}")
            self._previous = _check(context.key, string_to_sign, self._trailer_signature)
        self._state = _DONE

    # -- the end ------------------------------------------------------------------------------------
    def _finish(self) -> None:
        state = self._state
        if (state == _TRAILER and not self._line and not self._trailer_lines and not self._declared
                and not self.signed):
            # `0\r\n` and the end of the body: what an SDK sends when it has no trailer to add.
            self._state = state = _DONE
        if state != _DONE:
            raise _incomplete("The request body terminated unexpectedly.")
        if self._decoded_length is not None and self.decoded != self._decoded_length:
            raise _incomplete("The body is shorter than x-amz-decoded-content-length.")


def _check(key: bytes, string_to_sign: str, provided: str) -> str:
    expected = hmac_sha256(key, string_to_sign.encode()).hex()
    if not provided.isascii() or not hmac.compare_digest(expected, provided):
        raise AuthFailure(AuthFailureKind.BAD_SIGNATURE, "The request signature we calculated does not "
                          "match the signature you provided. Check your key and signing method.",
                          details={"signature_provided": provided, "string_to_sign": string_to_sign})
    return expected


def _malformed(message: str) -> AuthFailure:
    return AuthFailure(AuthFailureKind.MALFORMED_BODY, message)


def _incomplete(message: str) -> AuthFailure:
    return AuthFailure(AuthFailureKind.INCOMPLETE_BODY, message)

