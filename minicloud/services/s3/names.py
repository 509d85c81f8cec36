"""S3's naming rules, owners and ARNs."""

from __future__ import annotations

import hashlib
import ipaddress
import re

from minicloud.services.s3.errors import InvalidArgument, InvalidBucketName, KeyTooLongError

MAX_KEY_BYTES = 1024
_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def check_bucket_name(name: str) -> None:
    """The rules for general purpose buckets (S3 user guide, "Bucket naming rules")."""
    if (not _BUCKET_RE.fullmatch(name) or ".." in name or ".-" in name or "-." in name
            or name.startswith(_RESERVED_PREFIXES) or name.endswith(_RESERVED_SUFFIXES)
            or name == "_minicloud" or _is_ip(name)):
        raise InvalidBucketName("The specified bucket is not valid.", BucketName=name)


def _is_ip(name: str) -> bool:
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return False
    return True


def check_key(key: str) -> None:
    if not key:
        raise InvalidArgument("Object key must not be empty.")  # routing normally prevents this
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise KeyTooLongError("Your key is too long", MaxSizeAllowed=str(MAX_KEY_BYTES),
                              Size=str(len(key.encode("utf-8", "surrogatepass"))))
    if "\x00" in key:
        raise InvalidArgument("Object key must not contain NUL characters.")


def canonical_id(account_id: str) -> str:
    """The account's canonical user id (64 hex digits), stable for the account."""
    return hashlib.sha256(f"minicloud-canonical-user:{account_id}".encode()).hexdigest()


def owner(account_id: str) -> dict[str, str]:
    return {"ID": canonical_id(account_id), "DisplayName": account_id}


def bucket_arn(bucket: str) -> str:
    return f"arn:aws:s3:::{bucket}"


def object_arn(bucket: str, key: str) -> str:
    return f"arn:aws:s3:::{bucket}/{key}"
