"""KMS's key ring on every metadata backend: keys by every name, the aws/s3 managed key made once,
state checks, ciphertexts that open only under their key and context, and deletion after the window."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from minicloud.services.kms import store
from minicloud.services.kms.errors import (
    DisabledException,
    IncorrectKeyException,
    InvalidCiphertextException,
    KMSInvalidStateException,
    NotFoundException,
)
from minicloud.services.kms.keyring import KeyRing
from minicloud.services.kms.tables import kms_keys
from minicloud.storage.metadata.db import Database

ACCOUNT, REGION = "111122223333", "us-east-1"


def test_keys_aliases_and_crypto(metadata_db: Database, tmp_path: Path) -> None:
    ring = KeyRing(metadata_db, tmp_path)
    now = datetime.now(UTC)

    async def scenario() -> None:
        values = ring.new_key_values(ACCOUNT, REGION, now, description="d", policy=store.default_policy(ACCOUNT),
                                     tags={"a": "b"})
        key = await metadata_db.write(lambda conn: store.insert_key(conn, values))
        await metadata_db.write(lambda conn: store.put_alias(conn, ACCOUNT, REGION, "alias/app", key.key_id, now))
        for name in (key.key_id, key.key_id.upper(), key.arn, "alias/app", store.alias_arn(ACCOUNT, REGION,
                                                                                            "alias/app")):
            assert (await ring.find(ACCOUNT, REGION, name)).key_id == key.key_id, name
        for missing in ("nope", "alias/none", store.key_arn(ACCOUNT, "eu-west-1", key.key_id)):
            with pytest.raises(NotFoundException):
                await ring.find(ACCOUNT, REGION, missing)
        with pytest.raises(NotFoundException):  # another account's key needs its ARN
            await ring.find("444455556666", REGION, key.key_id)

        plaintext, blob = ring.generate_data_key(key, 32, {"aws:s3:arn": "arn:aws:s3:::b/k"})
        assert len(plaintext) == 32 and plaintext not in blob
        found = await ring.key_of(blob)
        assert ring.decrypt(found, blob, {"aws:s3:arn": "arn:aws:s3:::b/k"}, key) == plaintext
        with pytest.raises(InvalidCiphertextException):
            ring.decrypt(found, blob, {"aws:s3:arn": "arn:aws:s3:::b/other"})
        with pytest.raises(InvalidCiphertextException):
            await ring.key_of(b"\x01" + b"x" * 80)
        other_values = ring.new_key_values(ACCOUNT, REGION, now, description="", policy="{}", tags={})
        other = await metadata_db.write(lambda conn: store.insert_key(conn, other_values))
        with pytest.raises(IncorrectKeyException):
            ring.decrypt(found, blob, {"aws:s3:arn": "arn:aws:s3:::b/k"}, other)

        await metadata_db.write(lambda conn: store.update_key(conn, key.key_id, state=store.DISABLED))
        with pytest.raises(DisabledException):
            ring.decrypt(await ring.key_of(blob), blob, {"aws:s3:arn": "arn:aws:s3:::b/k"})
        await metadata_db.write(lambda conn: store.update_key(
            conn, key.key_id, state=store.PENDING_DELETION, deletion_date=now - timedelta(seconds=1), pending_days=7))
        with pytest.raises(KMSInvalidStateException):
            ring.encrypt(await ring.key_of(blob), b"x", None)
        assert await metadata_db.write(lambda conn: store.purge_deleted(conn, now)) == 1
        with pytest.raises(InvalidCiphertextException):
            await ring.key_of(blob)
        assert await metadata_db.read(lambda conn: store.alias_target(conn, ACCOUNT, REGION, "alias/app")) is None

    asyncio.run(scenario())
    with metadata_db.engine.connect() as conn:  # the material is never stored in the clear
        assert all(len(bytes(m)) == 12 + 32 + 16 for m in conn.execute(sa.select(kms_keys.c.material)).scalars())


def test_the_managed_key_is_made_once(metadata_db: Database, tmp_path: Path) -> None:
    ring = KeyRing(metadata_db, tmp_path)

    async def scenario() -> None:
        now = datetime.now(UTC)
        made = await asyncio.gather(*(ring.managed_key(ACCOUNT, REGION, "s3", now) for _ in range(4)))
        assert len({k.key_id for k in made}) == 1 and made[0].manager == "AWS"
        assert (await ring.find(ACCOUNT, REGION, "alias/aws/s3")).key_id == made[0].key_id
        assert (await ring.managed_key("444455556666", REGION, "s3", now)).key_id != made[0].key_id

    asyncio.run(scenario())
