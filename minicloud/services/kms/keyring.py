"""KMS keys as a service: find a key by any of its names, check that it may be used, and the
cryptographic operations on it. The KMS provider answers the API with it; other services (S3's
SSE-KMS) use it directly, authorising their caller for the kms: actions they perform.
"""

from __future__ import annotations

import json
import re
import secrets
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from minicloud.aws.context import RequestContext
from minicloud.services.kms import ciphertext, key_policy, store
from minicloud.services.kms.ciphertext import MalformedCiphertext, MasterKey
from minicloud.services.kms.errors import (
    DisabledException,
    IncorrectKeyException,
    InvalidCiphertextException,
    KMSInvalidStateException,
    NotFoundException,
)
from minicloud.services.kms.store import Key
from minicloud.storage.metadata.db import Database

_ARN = re.compile(r"^arn:aws:kms:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):(?P<kind>key|alias)/(?P<name>.+)$")
MANAGED_DESCRIPTIONS = {"s3": "Default key that protects my S3 objects when no other key is defined"}


def _is_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text.lower()
    except ValueError:
        return False


class KeyRing:
    def __init__(self, db: Database, data_dir: Path) -> None:
        self.db = db
        self._master_path = data_dir / "kms" / "master.key"
        self._master_key: MasterKey | None = None

    def master(self) -> MasterKey:
        if self._master_key is None:
            self._master_key = MasterKey.load_or_create(self._master_path)
        return self._master_key

    # -- finding keys --------------------------------------------------------------------------------
    async def find(self, account_id: str, region: str, ident: str) -> Key:
        """The key named by a key id, key ARN, alias name or alias ARN (NotFoundException if none)."""
        match = _ARN.match(ident)
        if match:
            account_id, region = match["account"], match["region"]
            if match["kind"] == "alias":
                return await self._by_alias(account_id, region, "alias/" + match["name"])
            ident = match["name"]
        elif ident.startswith("alias/"):
            return await self._by_alias(account_id, region, ident)
        if not _is_uuid(ident):
            raise NotFoundException(f"Invalid keyId '{ident}'")
        key = await self.db.read(lambda conn: store.get_key(conn, ident.lower()))
        if key is None or key.account_id != account_id or key.region != region:
            raise NotFoundException(f"Key '{store.key_arn(account_id, region, ident)}' does not exist")
        return key

    async def _by_alias(self, account_id: str, region: str, name: str) -> Key:
        def find(conn: sa.Connection) -> Key | None:
            target = store.alias_target(conn, account_id, region, name)
            return store.get_key(conn, target) if target else None

        key = await self.db.read(find)
        if key is None:
            raise NotFoundException(f"Alias {store.alias_arn(account_id, region, name)} is not found.")
        return key

    async def managed_key(self, account_id: str, region: str, service: str, now: datetime) -> Key:
        """The AWS managed key ``alias/aws/<service>`` of an account, created on first use."""
        name = f"alias/aws/{service}"

        def find_or_create(conn: sa.Connection) -> Key:
            target = store.alias_target(conn, account_id, region, name)
            found = store.get_key(conn, target) if target else None
            if found is not None:
                return found
            key = store.insert_key(conn, self.new_key_values(
                account_id, region, now, description=MANAGED_DESCRIPTIONS.get(service, ""),
                policy=store.default_policy(account_id), tags={}, manager="AWS"))
            store.put_alias(conn, account_id, region, name, key.key_id, now)
            return key

        try:
            return await self.db.write(find_or_create)
        except sa.exc.IntegrityError:  # another request created it at the same moment
            return await self.db.write(find_or_create)

    def new_key_values(self, account_id: str, region: str, now: datetime, *, description: str, policy: str,
                       tags: dict[str, str], manager: str = "CUSTOMER") -> dict[str, Any]:
        key_id = str(uuid.uuid4())
        return {"key_id": key_id, "account_id": account_id, "region": region, "description": description,
                "state": store.ENABLED, "manager": manager, "created_at": now, "deletion_date": None,
                "pending_days": None, "policy": policy, "tags": json.dumps(tags, sort_keys=True),
                "material": self.master().wrap(key_id, ciphertext.new_material())}

    # -- using keys ----------------------------------------------------------------------------------
    @staticmethod
    async def authorize(ctx: RequestContext, key: Key, action: str) -> None:
        """IAM with the key policy as the resource policy (the default policy defers to IAM)."""
        await key_policy.authorize(ctx, key.policy, f"kms:{action}", key.arn, key.account_id)

    @staticmethod
    def check_usable(key: Key) -> None:
        if key.state == store.DISABLED:
            raise DisabledException(f"{key.arn} is disabled.")
        if key.state == store.PENDING_DELETION:
            raise KMSInvalidStateException(f"{key.arn} is pending deletion.")

    def encrypt(self, key: Key, plaintext: bytes, context: dict[str, str] | None) -> bytes:
        self.check_usable(key)
        material = self.master().unwrap(key.key_id, key.material)
        return ciphertext.encrypt(material, key.key_id, plaintext, context)

    def generate_data_key(self, key: Key, size: int, context: dict[str, str] | None) -> tuple[bytes, bytes]:
        """A new random data key: (plaintext, its ciphertext under ``key``)."""
        plaintext = secrets.token_bytes(size)
        return plaintext, self.encrypt(key, plaintext, context)

    async def key_of(self, blob: bytes) -> Key:
        """The key a ciphertext blob was made with (InvalidCiphertextException if it names none)."""
        try:
            parsed = ciphertext.parse_blob(blob)
        except MalformedCiphertext:
            raise InvalidCiphertextException("") from None
        key = await self.db.read(lambda conn: store.get_key(conn, parsed.key_id))
        if key is None:
            raise InvalidCiphertextException("")
        return key

    def decrypt(self, key: Key, blob: bytes, context: dict[str, str] | None, expected: Key | None = None) -> bytes:
        if expected is not None and expected.key_id != key.key_id:
            raise IncorrectKeyException("The key ID in the request does not identify a KMS key that can perform "
                                        "this operation.")
        self.check_usable(key)
        try:
            material = self.master().unwrap(key.key_id, key.material)
            return ciphertext.decrypt(material, ciphertext.parse_blob(blob), context)
        except MalformedCiphertext:
            raise InvalidCiphertextException("") from None

