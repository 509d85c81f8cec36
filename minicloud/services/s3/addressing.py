"""Virtual-hosted-style addressing: ``Host: <bucket>.s3.<anything>`` (as AWS endpoints and
``addressing_style=virtual`` clients send it) or ``Host: <bucket>.localhost[:port]`` names the
bucket; the request is re-addressed to the path-style ``/<bucket>/<key>`` before it is parsed,
while signatures are still checked against the path the client signed."""

from __future__ import annotations

import functools
import re

from minicloud.aws.request import AwsRequest

_S3_HOST = re.compile(r"(?P<bucket>[a-z0-9][a-z0-9.-]*?)\.s3[.-]", re.IGNORECASE)
_LOCALHOST = re.compile(r"(?P<bucket>[a-z0-9][a-z0-9.-]*)\.localhost", re.IGNORECASE)


@functools.lru_cache(maxsize=1024)
def host_bucket(host: str) -> str | None:
    """The bucket a Host header names, None for a path-style host."""
    name = host.strip().rsplit(":", 1)[0] if not host.endswith("]") else host
    match = _S3_HOST.match(name)
    if match is None:
        match = _LOCALHOST.fullmatch(name)
    if match is None:
        return None
    bucket = match.group("bucket").lower()
    return None if bucket in ("s3", "www") else bucket


def readdress(request: AwsRequest) -> None:
    bucket = host_bucket(request.headers.get("host") or "")
    if bucket is None or request.signed_path is not None:
        return
    request.signed_path = request.path
    path = request.path or "/"
    request.path = f"/{bucket}" if path == "/" else f"/{bucket}{path}"
