"""Identifiers shaped like AWS's: account ids, access keys, unique ids of IAM entities."""

from __future__ import annotations

import secrets
import string

_UPPER_ALNUM = string.ascii_uppercase + "234567"
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"

# Unique-id prefixes AWS uses (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html)
ACCESS_KEY = "AKIA"
TEMPORARY_ACCESS_KEY = "ASIA"
USER = "AIDA"
ROLE = "AROA"
GROUP = "AGPA"
MANAGED_POLICY = "ANPA"
INSTANCE_PROFILE = "AIPA"


def account_id() -> str:
    return str(secrets.randbelow(9 * 10**11) + 10**11)


def unique_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_UPPER_ALNUM) for _ in range(17))


def access_key_id(temporary: bool = False) -> str:
    prefix = TEMPORARY_ACCESS_KEY if temporary else ACCESS_KEY
    return prefix + "".join(secrets.choice(_UPPER_ALNUM) for _ in range(16))


def secret_access_key() -> str:
    return "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))
