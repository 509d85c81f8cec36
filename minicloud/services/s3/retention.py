"""Object Lock operations: the bucket's configuration, retention and legal hold of versions
(the rules themselves are in ``locks.py``)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from minicloud.aws.context import RequestContext
from minicloud.services.s3 import store
from minicloud.services.s3.errors import (
    AccessDenied,
    InvalidArgument,
    InvalidBucketState,
    InvalidRequest,
    InvalidRetentionPeriod,
    MalformedXML,
    NoSuchObjectLockConfiguration,
    ObjectLockConfigurationNotFoundError,
)
from minicloud.services.s3.locks import MODES, lock_condition_keys, lock_enabled, stored_lock
from minicloud.services.s3.objects import ObjectOperations
from minicloud.services.s3.store import Bucket, ObjectRow


def _check_default_retention(rule: dict[str, Any]) -> dict[str, Any]:
    default = rule.get("DefaultRetention")
    if not isinstance(default, dict) or default.get("Mode") not in MODES:
        raise MalformedXML()
    days: Any = default.get("Days")
    years: Any = default.get("Years")
    if (days is None) == (years is None):
        raise MalformedXML()
    if int(days if days is not None else years) <= 0:
        raise InvalidRetentionPeriod("Default retention period must be a positive integer value.")
    return {"DefaultRetention": {k: v for k, v in default.items() if v is not None}}


class LockOperations(ObjectOperations):
    # -- bucket configuration ------------------------------------------------------------------------
    async def put_object_lock_configuration(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = await self.bucket_for(ctx, params, "PutBucketObjectLockConfiguration")
        config = params.get("ObjectLockConfiguration") or {}
        if config.get("ObjectLockEnabled") != "Enabled":
            raise MalformedXML()
        if not lock_enabled(bucket) and bucket.versioning != "Enabled":
            raise InvalidBucketState("Versioning must be 'Enabled' on the bucket to apply a Object Lock "
                                     "configuration", BucketName=bucket.name)
        stored: dict[str, Any] = {"enabled": True}
        if config.get("Rule"):
            stored["rule"] = _check_default_retention(config["Rule"])
        text = json.dumps(stored)
        await self.db.write(lambda conn: store.update_bucket(conn, bucket.name, object_lock=text))
        self.forget_bucket(bucket.name)
        return {}

    async def get_object_lock_configuration(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = await self.bucket_for(ctx, params, "GetBucketObjectLockConfiguration")
        config = bucket.config("object_lock")
        if not config or not config.get("enabled"):
            raise ObjectLockConfigurationNotFoundError("Object Lock configuration does not exist for this bucket",
                                                       BucketName=bucket.name)
        out: dict[str, Any] = {"ObjectLockEnabled": "Enabled"}
        if config.get("rule"):
            out["Rule"] = config["rule"]
        return {"ObjectLockConfiguration": out}

    # -- retention and legal hold --------------------------------------------------------------------
    async def _locked_version(self, ctx: RequestContext, params: dict[str, Any], action: str,
                              lock_keys: dict[str, str] | None = None) -> tuple[Bucket, ObjectRow]:
        """The bucket and the version addressed, once ``action`` is allowed (with the request's Object
        Lock condition keys, ``lock_keys``, for the operations that set a lock)."""
        key, version_id = params["Key"], params.get("VersionId")
        bucket = await self.bucket_for(ctx, params, action, key, lock_keys)
        if not lock_enabled(bucket):
            raise InvalidRequest("Bucket is missing Object Lock Configuration")
        return bucket, await self.find_object(ctx, bucket, key, version_id, action)

    async def put_object_retention(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        retention = params.get("Retention") or {}
        mode: Any = retention.get("Mode")
        until: Any = retention.get("RetainUntilDate")
        bucket, row = await self._locked_version(ctx, params, "PutObjectRetention",
                                                 lock_condition_keys(mode, until, None, ctx.now))
        if (mode is None) != (until is None):
            raise MalformedXML()
        if mode is not None and mode not in MODES:
            raise MalformedXML()
        if until is not None and until <= ctx.now:
            raise InvalidArgument("The retain until date must be in the future!")
        lock = stored_lock(row)
        current_until = datetime.fromisoformat(lock["until"]) if lock.get("mode") else None
        if current_until is not None and current_until > ctx.now:
            weaker = mode != lock["mode"] or until is None or until < current_until
            if weaker and (lock["mode"] == "COMPLIANCE"
                           or not await self.bypass_governance(ctx, params, bucket, row.key)):
                raise AccessDenied("Access Denied because object protected by object lock.")
        if mode is None:
            lock.pop("mode", None)
            lock.pop("until", None)
        else:
            lock.update(mode=mode, until=until.isoformat())
        await self._save_lock(bucket, row, lock)
        return {}

    async def get_object_retention(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        _, row = await self._locked_version(ctx, params, "GetObjectRetention")
        lock = stored_lock(row)
        if not lock.get("mode"):
            raise NoSuchObjectLockConfiguration("The specified object does not have a ObjectLock configuration")
        return {"Retention": {"Mode": lock["mode"], "RetainUntilDate": datetime.fromisoformat(lock["until"])}}

    async def put_object_legal_hold(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        status = (params.get("LegalHold") or {}).get("Status")
        bucket, row = await self._locked_version(ctx, params, "PutObjectLegalHold",
                                                 lock_condition_keys(None, None, status, ctx.now))
        if status not in ("ON", "OFF"):
            raise MalformedXML()
        await self._save_lock(bucket, row, {**stored_lock(row), "legal_hold": status})
        return {}

    async def get_object_legal_hold(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        _, row = await self._locked_version(ctx, params, "GetObjectLegalHold")
        status = stored_lock(row).get("legal_hold")
        if not status:
            raise NoSuchObjectLockConfiguration("The specified object does not have a ObjectLock configuration")
        return {"LegalHold": {"Status": status}}

    async def _save_lock(self, bucket: Bucket, row: ObjectRow, lock: dict[str, Any]) -> None:
        await self.change_metadata(bucket, row, "lock", json.dumps(lock) if lock else None)
