"""Receiving an upload body (PutObject, UploadPart): size rules, then the bytes staged in the blob
store and checked against Content-MD5, x-amz-checksum-* (headers or trailers) and the signed
SHA-256 before anything is committed."""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterable
from typing import Any

from minicloud.aws.payload import RequestPayload
from minicloud.services.s3.checksums import ALGORITHMS, HEADER, MEMBER
from minicloud.services.s3.crypto import Sealer
from minicloud.services.s3.data import ObjectData, Staged
from minicloud.services.s3.errors import (
    BadDigest,
    EntityTooLarge,
    InvalidArgument,
    InvalidDigest,
    InvalidRequest,
    NotImplementedFeature,
)

MAX_PUT_BYTES = 5 * 1024 ** 3  # a single PUT (and a part)


async def _empty() -> Any:
    if False:  # pragma: no cover - an async generator that yields nothing
        yield b""


async def _chunks(data: bytes) -> Any:
    yield data


def wanted_checksums(params: dict[str, Any], payload: RequestPayload | None, declared_trailer: str) -> set[str]:
    """The algorithms to compute: the SDK's choice, any x-amz-checksum-* header, a declared trailer."""
    wanted: set[str] = set()
    algorithm = params.get("ChecksumAlgorithm")
    if algorithm:
        wanted.add(str(algorithm).upper())
    for name in ALGORITHMS:
        if params.get(MEMBER[name]) is not None:
            wanted.add(name)
    for trailer in declared_trailer.split(",") if declared_trailer else ():
        trailer = trailer.strip().lower()
        for name in ALGORITHMS:
            if trailer == HEADER[name]:
                wanted.add(name)
    del payload
    return wanted


async def receive_body(data: ObjectData, params: dict[str, Any], storage_class: str,
                       declared_trailer: str, sealer: Sealer | None = None) -> Staged:
    payload = params.get("Body")
    if isinstance(payload, bytes | bytearray):  # a body the edge had to read whole
        payload = RequestPayload(_chunks(bytes(payload)), length=len(payload))
    if payload is not None and not isinstance(payload, RequestPayload):
        raise InvalidRequest("The request body could not be read.")
    if payload is not None:
        if payload.length is None and params.get("ContentLength") is None:
            # A body of unannounced length: plain chunked transfer coding (an aws-chunked body
            # announces x-amz-decoded-content-length), which S3 refuses before reading it.
            raise NotImplementedFeature("A header you provided implies functionality that is not implemented",
                                        Header="Transfer-Encoding")
        if payload.length is not None and payload.length > MAX_PUT_BYTES:
            raise EntityTooLarge("Your proposed upload exceeds the maximum allowed size",
                                 MaxSizeAllowed=str(MAX_PUT_BYTES), ProposedSize=str(payload.length))
        if payload.declared_sha256 is not None:
            payload.consumer_checks_sha256 = True
    wanted = wanted_checksums(params, payload, declared_trailer)
    if len(wanted) > 1 and len({n for n in ALGORITHMS if params.get(MEMBER[n]) is not None}) > 1:
        raise InvalidRequest("Expecting a single x-amz-checksum- header. Multiple checksum Types are not "
                             "allowed.")
    if "CRC64NVME" in wanted:
        pass  # computed in pure Python: slow for large bodies, exact all the same
    source: AsyncIterable[bytes] = payload if payload is not None else _empty()
    # The plaintext's SHA-256 is needed only to check a digest the client signed (a sealed body's
    # blob is named by the SHA-256 of its sealed bytes): not for UNSIGNED-PAYLOAD nor STREAMING-*.
    signed_digest = payload is not None and payload.declared_sha256 is not None
    staged = await data.stage(source, storage_class, checksums=wanted, limit=MAX_PUT_BYTES, sealer=sealer,
                              plain_sha256=signed_digest)
    try:
        if payload is not None and signed_digest:
            payload.check_sha256(staged.sha256)
        _check_md5(params.get("ContentMD5"), staged.md5)
        trailers = payload.trailers if payload is not None else {}
        _check_checksums(params, trailers, staged.checksums)
    except BaseException:
        await staged.abort()
        raise
    return staged


def _check_md5(content_md5: str | None, md5_hex: str) -> None:
    if content_md5 is None:
        return
    try:
        declared = base64.b64decode(content_md5, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidDigest("The Content-MD5 you specified was invalid.") from None
    if len(declared) != 16:
        raise InvalidDigest("The Content-MD5 you specified was invalid.")
    if declared.hex() != md5_hex:
        raise BadDigest("The Content-MD5 you specified did not match what we received.",
                        ExpectedDigest=content_md5, CalculatedDigest=base64.b64encode(bytes.fromhex(md5_hex)).decode())


def _check_checksums(params: dict[str, Any], trailers: dict[str, str], computed: dict[str, str]) -> None:
    for name, value in computed.items():
        declared = params.get(MEMBER[name]) or trailers.get(HEADER[name])
        if declared is None:
            continue
        try:
            base64.b64decode(declared, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidArgument(f"Value for x-amz-checksum-{name.lower()} header is invalid.") from None
        if declared != value:
            raise BadDigest(f"The {name} you specified did not match the calculated checksum.")


def checksum_members(stored: dict[str, Any]) -> dict[str, Any]:
    """Output members (ChecksumCRC32, ..., ChecksumType) for stored checksums."""
    out: dict[str, Any] = {}
    for name in ALGORITHMS:
        if stored.get(name):
            out[MEMBER[name]] = stored[name]
    if out:
        out["ChecksumType"] = stored.get("type", "FULL_OBJECT")
    return out
