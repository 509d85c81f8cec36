"""Encoded authorization failure messages, and their decoding (sts:DecodeAuthorizationMessage).

Some AWS services (EC2 above all) end an access-denied message with "Encoded authorization failure
message: <token>": the whole story of the refusal (the principal, the action, the resource, every
condition key's value, whether an explicit deny decided it), sealed, because it may say more than
the caller may see. Whoever holds sts:DecodeAuthorizationMessage in the same account reads it back
as the JSON document AWS returns:

    {"allowed": false, "explicitDeny": false, "matchedStatements": {"items": []},
     "failures": {"items": []},
     "context": {"principal": {"id": ..., "name": ..., "arn": ...}, "action": "ec2:RunInstances",
                 "resource": "arn:aws:ec2:...", "conditions": {"items": [
                     {"key": "ec2:InstanceType", "values": {"items": [{"value": "t3.micro"}]}}]}}}

A token is AES-256-GCM under a key kept in the data directory (``keyfile``: the same key in every
process of a server, and across restarts), bound to the account it was issued to (the account is
the associated data), and valid for ``VALID_SECONDS``.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from minicloud.iam.identity import Principal
from minicloud.storage.keyfile import load_or_create_key

VALID_SECONDS = 7 * 24 * 3600  # how long a token can be decoded
PREFIX = "Encoded authorization failure message: "
_VERSION = b"\x01"
_NONCE = 12


class InvalidMessage(ValueError):
    """A token that is not one of ours, was issued to another account, or has expired."""


def failure_document(principal: Principal, action: str, resource: str,
                     conditions: Mapping[str, str | list[str]], explicit_deny: bool) -> dict[str, object]:
    """AWS's decoded message for a refused request."""
    items = []
    for key in sorted(conditions):
        value = conditions[key]
        values = value if isinstance(value, list) else [value]
        items.append({"key": key, "values": {"items": [{"value": str(v)} for v in values]}})
    return {
        "allowed": False, "explicitDeny": explicit_deny, "matchedStatements": {"items": []},
        "failures": {"items": []},
        "context": {"principal": {"id": principal.user_id, "name": principal.name or principal.account_id,
                                  "arn": principal.arn},
                    "action": action, "resource": resource, "conditions": {"items": items}},
    }


class FailureMessages:
    """Seals and opens the tokens of one server (its key file)."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    @classmethod
    def load(cls, path: Path) -> FailureMessages:
        return cls(load_or_create_key(path))

    def encode(self, account_id: str, document: Mapping[str, object], now: float | None = None) -> str:
        issued = int(time.time() if now is None else now)
        plain = json.dumps({"issued": issued, "message": document}, separators=(",", ":")).encode()
        nonce = os.urandom(_NONCE)
        sealed = self._aead.encrypt(nonce, plain, account_id.encode())
        return base64.urlsafe_b64encode(_VERSION + nonce + sealed).decode().rstrip("=")

    def decode(self, account_id: str, token: str, now: float | None = None) -> str:
        """The JSON document of ``token``, issued to ``account_id``; ``InvalidMessage`` otherwise."""
        text = token.strip()
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            raise InvalidMessage("not a token") from None
        if len(raw) <= 1 + _NONCE or raw[:1] != _VERSION:
            raise InvalidMessage("not a token")
        try:
            plain = self._aead.decrypt(raw[1:1 + _NONCE], raw[1 + _NONCE:], account_id.encode())
        except InvalidTag:
            raise InvalidMessage("not this account's token") from None
        body = json.loads(plain)
        if (time.time() if now is None else now) - int(body["issued"]) > VALID_SECONDS:
            raise InvalidMessage("expired")
        return json.dumps(body["message"], separators=(",", ":"))
