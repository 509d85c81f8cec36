"""AWS Key Management Service: symmetric keys (AES-256-GCM), aliases, key policies, tags, and the
cryptographic operations; keys scheduled for deletion are deleted by a controller when their
waiting period ends. Other services use keys through ``keyring.KeyRing`` (S3's SSE-KMS)."""

from __future__ import annotations

from datetime import UTC, datetime

from minicloud.runtime import Runtime
from minicloud.services.kms import store
from minicloud.services.kms.aliases import AliasOperations
from minicloud.services.kms.cryptography_ops import CryptographyOperations
from minicloud.services.kms.lifecycle import KeyLifecycle
from minicloud.storage.metadata.db import Database


class KeyDeletionController:
    name = "kms-key-deletion"
    interval = 60.0

    def __init__(self, db: Database) -> None:
        self.db = db

    async def reconcile(self) -> None:
        now = datetime.now(UTC)
        await self.db.write(lambda conn: store.purge_deleted(conn, now))


class KmsProvider(KeyLifecycle, AliasOperations, CryptographyOperations):
    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        runtime.controllers.append(KeyDeletionController(runtime.db))
