"""The streaming payload of an operation (S3 PutObject, UploadPart), as its provider reads it.

    payload = RequestPayload.for_request(request, auth, secret)
    async for chunk in payload:        # the decoded bytes, as they arrive
        ...
    payload.trailers                   # x-amz-checksum-* sent after an aws-chunked body

An ``aws-chunked`` body is decoded (and its chunk signatures checked) by ``ChunkedPayloadDecoder``;
a body whose ``x-amz-content-sha256`` is a hex digest is hashed and compared once it has all
arrived. Either check fails with ``AuthFailure`` raised from the iteration itself, so a provider
keeps what it received provisional until the iteration has finished.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator

from minicloud.aws import sigv4
from minicloud.aws.request import AwsRequest, BodyStream

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


async def _once(body: bytes) -> AsyncIterator[bytes]:
    if body:
        yield body


class RequestPayload:
    """An async iterator of the payload's bytes; iterate it once."""

    def __init__(self, source: BodyStream, *, length: int | None,
                 decoder: sigv4.ChunkedPayloadDecoder | None = None,
                 auth: sigv4.SigV4Auth | None = None) -> None:
        self._source = source
        self._decoder = decoder
        self._auth = auth if auth is not None and _HEX64.fullmatch(auth.payload_hash or "") else None
        self.length = length  # the payload's size when the request declares it
        self.trailers: dict[str, str] = {}
        self.received = 0
        self.complete = False
        # A consumer that hashes the bytes with SHA-256 anyway (a content-addressed store) sets
        # this and calls ``check_sha256`` itself, so the payload is not hashed twice.
        self.consumer_checks_sha256 = False

    @property
    def declared_sha256(self) -> str | None:
        """The hex SHA-256 the client signed for the payload, if it signed one."""
        return self._auth.payload_hash.lower() if self._auth is not None and self._auth.payload_hash else None

    def check_sha256(self, computed_hex: str) -> None:
        """Raise ``AuthFailure`` (XAmzContentSHA256Mismatch) unless it is the declared digest."""
        if self._auth is not None:
            sigv4.check_payload_hash(self._auth, computed_hex)

    @classmethod
    def for_request(cls, request: AwsRequest, auth: sigv4.SigV4Auth | None,
                    secret_access_key: str | None) -> RequestPayload:
        decoder = sigv4.ChunkedPayloadDecoder.for_request(request, auth, secret_access_key)
        raw = (request.headers.get("x-amz-decoded-content-length") if decoder is not None
               else request.headers.get("content-length"))
        length = int(raw) if raw is not None and raw.strip().isdigit() else None
        if request.stream is None and decoder is None:
            length = len(request.body)
        source = request.stream if request.stream is not None else _once(request.body)
        return cls(source, length=length, decoder=decoder, auth=auth)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        hasher = hashlib.sha256() if self._auth is not None and not self.consumer_checks_sha256 else None
        decoder = self._decoder
        async for chunk in self._source:
            data = decoder.feed(chunk) if decoder is not None else chunk
            if data:
                if hasher is not None:
                    hasher.update(data)
                self.received += len(data)
                yield data
        if decoder is not None:
            self.trailers = decoder.finish()
        if hasher is not None and self._auth is not None:
            sigv4.check_payload_hash(self._auth, hasher.hexdigest())
        self.complete = True
