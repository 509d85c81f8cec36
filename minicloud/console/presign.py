"""Presigned S3 links for the signed-in principal.

A console session holds no secret key (IAM users signed in with a password have none to hold), so
a link is signed with temporary credentials issued to the principal by STS ``GetSessionToken``,
called through the STS provider like any console action. The link works until the earlier of its
own expiry and the credentials' (GetSessionToken issues at least 15 minutes; root at most 1 hour).
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from minicloud.console.calls import PrincipalCalls
from minicloud.iam.identity import PrincipalKind

MIN_SESSION = 900
ROOT_MAX = 3600
USER_MAX = 129600
LINK_MAX = 7 * 24 * 3600  # SigV4 presigned URLs live at most 7 days


@dataclass(frozen=True, slots=True)
class PresignedLink:
    url: str
    expires_in: int
    credentials_expire: datetime


def longest_link(kind: PrincipalKind) -> int:
    return ROOT_MAX if kind is PrincipalKind.ROOT else min(USER_MAX, LINK_MAX)


@functools.cache
def _botocore_session() -> Any:
    import botocore.session

    return botocore.session.get_session()


def _sign(endpoint: str, region: str, credentials: dict[str, Any], bucket: str, key: str,
          version_id: str | None, expires_in: int) -> str:
    from botocore.config import Config

    client = _botocore_session().create_client(
        "s3", region_name=region, endpoint_url=endpoint,
        aws_access_key_id=credentials["AccessKeyId"], aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    params: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if version_id:
        params["VersionId"] = version_id
    return str(client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in))


async def presign_get(calls: PrincipalCalls, endpoint: str, bucket: str, key: str, version_id: str | None,
                      expires_in: int) -> PresignedLink:
    """A GET link for the object, signed with fresh temporary credentials of the principal.
    Raises the service's error (e.g. a ValidationError for a duration out of range)."""
    duration = max(MIN_SESSION, expires_in)
    issued = await calls.call("sts", "GetSessionToken", {"DurationSeconds": duration})
    credentials = issued["Credentials"]
    url = await asyncio.to_thread(_sign, endpoint, calls.region, credentials, bucket, key, version_id, expires_in)
    return PresignedLink(url, expires_in, credentials["Expiration"])
