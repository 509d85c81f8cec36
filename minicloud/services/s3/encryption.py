"""Server-side encryption: the bucket's default encryption configuration, and which key seals
(and opens) an object's data: SSE-S3 (minicloud's master key; every object by default, as S3
does since 2023) or SSE-C (the customer's key, sent with every request, never stored).

An object's ``encryption`` column holds ``{"sse": "AES256"}`` or ``{"sse": "SSE-C",
"fingerprint": <HMAC of the key under the master key>, "key_md5": <base64 MD5 of the key>}``.
A row without one predates encryption and is stored in the clear.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from minicloud.aws.context import RequestContext
from minicloud.services.s3 import store
from minicloud.services.s3.base import S3Base
from minicloud.services.s3.crypto import MasterKey, Sealer
from minicloud.services.s3.errors import (
    InvalidArgument,
    InvalidEncryptionAlgorithmError,
    InvalidRequest,
    MalformedXML,
    NotImplementedFeature,
)
from minicloud.services.s3.store import Bucket, ObjectRow

DEFAULT_RULES = [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": False}]
_KMS = ("aws:kms", "aws:kms:dsse")


@dataclass(frozen=True, slots=True)
class ObjectKey:
    """How one object's data is (to be) sealed: the key-encryption key, what is stored of it,
    and the response members that say so."""

    kek: bytes
    stored: dict[str, str]

    def sealer(self) -> Sealer:
        return Sealer(self.kek)

    def members(self) -> dict[str, Any]:
        return response_members(self.stored)


def response_members(stored: dict[str, str] | None) -> dict[str, Any]:
    if not stored:
        return {}
    if stored.get("sse") == "SSE-C":
        return {"SSECustomerAlgorithm": "AES256", "SSECustomerKeyMD5": stored["key_md5"]}
    return {"ServerSideEncryption": "AES256"}


def stored_encryption(row: ObjectRow) -> dict[str, str] | None:
    return json.loads(row.encryption) if row.encryption else None


def _customer_key(algorithm: Any, key: Any, key_md5: Any) -> tuple[bytes, str] | None:
    """The SSE-C key of a request (and its MD5) from the three headers, or None if none is sent."""
    if algorithm is None and key is None and key_md5 is None:
        return None
    if algorithm is None:
        raise InvalidArgument("Requests specifying Server Side Encryption with Customer provided keys must "
                              "provide a valid encryption algorithm.",
                              ArgumentName="x-amz-server-side-encryption-customer-algorithm")
    if algorithm != "AES256":
        raise InvalidEncryptionAlgorithmError("The encryption request you specified is not valid. The valid "
                                              "value is AES256.", ArgumentName="x-amz-server-side-encryption",
                                              ArgumentValue=str(algorithm))
    if key is None:
        raise InvalidArgument("Requests specifying Server Side Encryption with Customer provided keys must "
                              "provide an appropriate secret key.",
                              ArgumentName="x-amz-server-side-encryption-customer-key")
    try:
        raw = base64.b64decode(str(key), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise InvalidArgument("The secret key was invalid for the specified algorithm.",
                              ArgumentName="x-amz-server-side-encryption-customer-key")
    actual_md5 = base64.b64encode(hashlib.md5(raw).digest()).decode()
    if key_md5 is None:
        raise InvalidArgument("Requests specifying Server Side Encryption with Customer provided keys must "
                              "provide the client calculated MD5 of the secret key.",
                              ArgumentName="x-amz-server-side-encryption-customer-key-MD5")
    if key_md5 != actual_md5:
        raise InvalidArgument("The calculated MD5 hash of the key did not match the hash that was provided.",
                              ArgumentName="x-amz-server-side-encryption-customer-key-MD5")
    return raw, actual_md5


class EncryptionOperations(S3Base):
    master_key: MasterKey

    def _master(self) -> MasterKey:
        found = getattr(self, "master_key", None)
        if found is None:
            found = self.master_key = MasterKey.load_or_create(self.runtime.config.data_dir / "s3" / "master.key")
        return found

    # -- bucket default encryption -------------------------------------------------------------------
    async def put_bucket_encryption(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = await self.bucket_for(ctx, params, "PutEncryptionConfiguration")
        rules = (params.get("ServerSideEncryptionConfiguration") or {}).get("Rules") or []
        if len(rules) != 1:
            raise MalformedXML("The XML you provided was not well-formed or did not validate against our "
                               "published schema")
        default = rules[0].get("ApplyServerSideEncryptionByDefault") or {}
        algorithm = default.get("SSEAlgorithm")
        if algorithm in _KMS:
            raise NotImplementedFeature("SSE-KMS is not implemented by minicloud (there is no KMS): use AES256.")
        if algorithm != "AES256":
            raise MalformedXML("The XML you provided was not well-formed or did not validate against our "
                               "published schema")
        if default.get("KMSMasterKeyID"):
            raise InvalidArgument("a KMSMasterKeyID is not applicable if the default sse algorithm is not aws:kms "
                                  "or aws:kms:dsse", ArgumentName="ApplyServerSideEncryptionByDefault")
        rule = {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
                "BucketKeyEnabled": bool(rules[0].get("BucketKeyEnabled", False))}
        text = json.dumps([rule])
        await self.db.write(lambda conn: store.update_bucket(conn, bucket.name, encryption=text))
        self.forget_bucket(bucket.name)
        return {}

    async def get_bucket_encryption(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = await self.bucket_for(ctx, params, "GetEncryptionConfiguration")
        return {"ServerSideEncryptionConfiguration": {"Rules": bucket.config("encryption") or DEFAULT_RULES}}

    async def delete_bucket_encryption(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = await self.bucket_for(ctx, params, "PutEncryptionConfiguration")
        await self.db.write(lambda conn: store.update_bucket(conn, bucket.name, encryption=None))
        self.forget_bucket(bucket.name)
        return {}

    # -- object keys ---------------------------------------------------------------------------------
    def write_key(self, params: dict[str, Any], bucket: Bucket) -> ObjectKey:
        """The key a write seals with: SSE-C headers, else x-amz-server-side-encryption, else the
        bucket's default (SSE-S3)."""
        del bucket  # every default is AES256 until SSE-KMS exists
        customer = _customer_key(params.get("SSECustomerAlgorithm"), params.get("SSECustomerKey"),
                                 params.get("SSECustomerKeyMD5"))
        requested = params.get("ServerSideEncryption")
        if customer is not None:
            if requested is not None:
                raise InvalidArgument("Server Side Encryption with Customer provided key is incompatible with the "
                                      "encryption method specified", ArgumentName="x-amz-server-side-encryption",
                                      ArgumentValue=str(requested))
            raw, md5 = customer
            return ObjectKey(raw, {"sse": "SSE-C", "fingerprint": self._master().fingerprint(raw), "key_md5": md5})
        if requested in _KMS:
            raise NotImplementedFeature("SSE-KMS is not implemented by minicloud (there is no KMS): use AES256.")
        if requested is not None and requested != "AES256":
            raise InvalidArgument("The encryption method specified is not supported",
                                  ArgumentName="x-amz-server-side-encryption", ArgumentValue=str(requested))
        return ObjectKey(self._master().key, {"sse": "AES256"})

    def upload_key(self, params: dict[str, Any], stored: dict[str, str] | None) -> ObjectKey | None:
        """The key an upload's parts seal with: the upload's own (SSE-C: the same key must come
        with every part)."""
        if not stored:
            return None
        return self._open(stored, params.get("SSECustomerAlgorithm"), params.get("SSECustomerKey"),
                          params.get("SSECustomerKeyMD5"), upload=True)

    def read_key(self, params: dict[str, Any], row: ObjectRow, *, copy_source: bool = False) -> bytes | None:
        """The key-encryption key that opens an object's data (None: stored in the clear)."""
        stored = stored_encryption(row)
        if not stored:
            return None
        prefix = "CopySource" if copy_source else ""
        key = self._open(stored, params.get(f"{prefix}SSECustomerAlgorithm"), params.get(f"{prefix}SSECustomerKey"),
                         params.get(f"{prefix}SSECustomerKeyMD5"))
        return key.kek if key is not None else None

    def _open(self, stored: dict[str, str], algorithm: Any, key: Any, key_md5: Any, *,
              upload: bool = False) -> ObjectKey:
        customer = _customer_key(algorithm, key, key_md5)
        if stored.get("sse") != "SSE-C":
            if customer is not None and not upload:
                raise InvalidRequest("The encryption parameters are not applicable to this object.")
            return ObjectKey(self._master().key, stored)
        if customer is None:
            if upload:
                raise InvalidRequest("The multipart upload initiate requested encryption. Subsequent part "
                                     "requests must include the appropriate encryption parameters.")
            raise InvalidRequest("The object was stored using a form of Server Side Encryption. The correct "
                                 "parameters must be provided to retrieve the object.")
        raw, _ = customer
        if not hmac.compare_digest(self._master().fingerprint(raw), stored.get("fingerprint", "")):
            if upload:
                raise InvalidRequest("The provided encryption parameters did not match the ones used originally.")
            raise self.access_denied("Access Denied")
        return ObjectKey(raw, stored)
