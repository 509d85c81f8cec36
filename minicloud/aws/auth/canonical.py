"""The canonical request of SigV4, built from a request as received.

    METHOD \n URI \n QUERY \n name:value\n... \n signed;header;names \n payload-hash

- URI: S3 signs the path URI-encoded once (the decoded key, encoded again by AWS's rules); every
  other service normalises the path (dot segments, repeated slashes) and encodes it a second time,
  so ``%`` on the wire becomes ``%25``;
- QUERY: every name and value decoded, then URI-encoded (unreserved characters kept), sorted by
  name then value; ``X-Amz-Signature`` left out of presigned requests;
- headers: the signed ones, lower-case, values trimmed with inner whitespace collapsed, repeated
  headers joined with ``,`` in the order received.

``variant_canonicals`` are the forms of clients that sign the bytes they send instead (non-canonical
percent-encoding, ``+`` for a space); the verifier tries them only after the canonical form failed.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, unquote, unquote_to_bytes

from minicloud.aws.request import AwsRequest

_UNRESERVED = re.compile(r"[A-Za-z0-9\-_.~]*")
_UNRESERVED_PATH = re.compile(r"[A-Za-z0-9\-_.~/]*")
_HOST_ONLY = ("host",)


def canonical_request(request: AwsRequest, *, s3: bool, presigned: bool,
                      signed_headers: tuple[str, ...], payload_hash: str) -> str:
    uri = canonical_uri(request.signed_path or request.path, s3=s3)
    query = canonical_query(request.query, presigned=presigned)
    return _assemble(request, signed_headers, uri, query, payload_hash)


def _assemble(request: AwsRequest, signed_headers: tuple[str, ...], uri: str, query: str,
              payload_hash: str) -> str:
    return (f"{request.method.upper()}\n{uri}\n{query}\n{canonical_headers(request, signed_headers)}"
            f"\n{';'.join(signed_headers)}\n{payload_hash}")


def canonical_headers(request: AwsRequest, signed_headers: tuple[str, ...]) -> str:
    """``name:value\\n`` for every signed header, in the order of SignedHeaders."""
    if signed_headers == _HOST_ONLY:  # what presigned URLs sign: one header, sent once
        hosts = request.headers.get_all("host")
        if len(hosts) == 1:
            return f"host:{' '.join(hosts[0].split())}\n"
    headers = request.headers
    if not headers.repeats():  # each name once: its value, trimmed, from the index
        lines = []
        for name in signed_headers:
            name = name.lower()
            value = headers.get(name)
            lines.append(f"{name}:{' '.join(value.split()) if value else ''}\n")
        return "".join(lines)
    wanted = {h.lower(): h for h in signed_headers}
    values: dict[str, list[str]] = {}
    for name, value in request.headers.iter_items():
        if name in wanted:
            values.setdefault(name, []).append(" ".join(value.split()))
    return "".join(f"{name.lower()}:{','.join(values.get(name.lower(), ()))}\n"
                   for name in signed_headers)


def canonical_uri(raw_path: str, *, s3: bool) -> str:
    path = raw_path or "/"
    if path == "/":  # every query, JSON and EC2 API call
        return path
    if s3:
        return path if _UNRESERVED_PATH.fullmatch(path) else quote(unquote_to_bytes(path), safe="/")
    return quote(_remove_dot_segments(path), safe="/~")


# Pure functions of a string, memoised: the requests of one client mostly share their query but for the
# signature (presigned: the same credential, date, expiry and signed headers), and a listing's parameters
# repeat. Bounded; emptied when full.
_MEMO_ENTRIES = 2048
_canonical_queries: dict[tuple[str, bool], str] = {}
_presigned_params: dict[str, dict[str, str]] = {}
SIGNATURE_PARAM = "X-Amz-Signature="


def remember(memo: dict[Any, Any], key: Any, value: Any) -> None:
    """``memo[key] = value``, the memo emptied first when full (a memo of pure functions of strings)."""
    if len(memo) >= _MEMO_ENTRIES:
        memo.clear()
    memo[key] = value


# The last query split by ``without_signature``: a presigned request's is split when its signature
# is parsed, then again when its canonical request is built (one tuple: replaced atomically).
_last_split: tuple[str, str, tuple[str, ...]] = ("", "", ())


def without_signature(raw_query: str) -> tuple[str, list[str]]:
    """``raw_query`` without its ``X-Amz-Signature=`` parameters (as sent, not decoded), and their values."""
    global _last_split
    last = _last_split
    if raw_query == last[0]:
        return last[1], list(last[2])
    rest, signatures = _split_signature(raw_query)
    _last_split = (raw_query, rest, tuple(signatures))
    return rest, signatures


def _split_signature(raw_query: str) -> tuple[str, list[str]]:
    at = raw_query.find(SIGNATURE_PARAM)
    if at < 0:
        return raw_query, []
    if (at == 0 or raw_query[at - 1] == "&") and raw_query.find(SIGNATURE_PARAM, at + 1) < 0:  # the usual: one
        end = raw_query.find("&", at)
        value = raw_query[at + len(SIGNATURE_PARAM):] if end < 0 else raw_query[at + len(SIGNATURE_PARAM):end]
        pieces = [raw_query[:at - 1]] if at > 0 else []
        if end >= 0:
            pieces.append(raw_query[end + 1:])
        return "&".join(pieces), [value]
    kept, signatures = [], []
    for part in raw_query.split("&"):
        if part.startswith(SIGNATURE_PARAM):
            signatures.append(part[len(SIGNATURE_PARAM):])
        else:
            kept.append(part)
    return "&".join(kept), signatures


def canonical_query(raw_query: str, *, presigned: bool) -> str:
    if not raw_query:
        return ""
    key = without_signature(raw_query)[0] if presigned else raw_query  # the signature is left out anyway
    found = _canonical_queries.get((key, presigned))
    if found is None:
        found = _canonical_query(key, presigned=presigned)
        remember(_canonical_queries, (key, presigned), found)
    return found


def _canonical_query(raw_query: str, *, presigned: bool) -> str:
    pairs = []
    for part in raw_query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        name, value = _encode_component(name), _encode_component(value)
        if presigned and name == "X-Amz-Signature":
            continue
        pairs.append((name, value))
    pairs.sort()
    return "&".join(f"{name}={value}" for name, value in pairs)


def _encode_component(text: str) -> str:
    if _UNRESERVED.fullmatch(text):
        return text
    return quote(unquote_to_bytes(text), safe="")


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 dot-segment removal, also dropping empty segments (what AWS services expect)."""
    out: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if out:
                out.pop()
        elif segment and segment != ".":
            out.append(segment)
    lead = "/" if path.startswith("/") else ""
    trail = "/" if path.endswith("/") and out else ""
    return lead + "/".join(out) + trail


def variant_canonicals(request: AwsRequest, *, s3: bool, presigned: bool,
                       signed_headers: tuple[str, ...], payload_hash: str, primary: str) -> list[str]:
    """Canonical requests of clients that sign the bytes they send rather than AWS's encoding."""
    path = request.signed_path or request.path or "/"
    uris = [canonical_uri(path, s3=s3)]
    if s3:
        uris.append(path)
    else:
        single = quote(unquote_to_bytes(_remove_dot_segments(path)), safe="/")
        uris.append(quote(single, safe="/~"))
    queries = [canonical_query(request.query, presigned=presigned),
               _raw_sorted_query(request.query, presigned=presigned)]
    if "+" in request.query:
        queries.append(canonical_query(request.query.replace("+", "%20"), presigned=presigned))
    seen = {primary}
    variants = []
    for uri in dict.fromkeys(uris):
        for query in dict.fromkeys(queries):
            text = _assemble(request, signed_headers, uri, query, payload_hash)
            if text not in seen:
                seen.add(text)
                variants.append(text)
    return variants


def _raw_sorted_query(raw_query: str, *, presigned: bool) -> str:
    pairs = []
    for part in raw_query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        if presigned and unquote(name) == "X-Amz-Signature":
            continue
        pairs.append((name, value))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def presigned_params(raw_query: str) -> dict[str, str]:
    """The decoded parameters of a presigned query, the first value of each name (read only: shared)."""
    rest, signatures = without_signature(raw_query)
    found = _presigned_params.get(rest)
    if found is None:
        found = {}
        for name, value in decoded_pairs(rest):
            found.setdefault(name, value)
        remember(_presigned_params, rest, found)
    if not signatures:
        return found
    if "X-Amz-Signature" in found:  # also named with percent-escapes: the first in the query wins
        params: dict[str, str] = {}
        for name, value in decoded_pairs(raw_query):
            params.setdefault(name, value)
        return params
    return {**found, "X-Amz-Signature": unquote(signatures[0])}


def decoded_pairs(raw_query: str) -> list[tuple[str, str]]:
    pairs = []
    for part in raw_query.split("&"):
        if part:
            name, _, value = part.partition("=")
            pairs.append((unquote(name), unquote(value)))
    return pairs
