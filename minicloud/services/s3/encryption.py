"""Server-side encryption: the bucket's default encryption configuration, and which key seals
(and opens) an object's data: SSE-S3 (minicloud's master key; every object by default, as S3
does since 2023), SSE-KMS (a data key made by KMS under the named KMS key) or SSE-C (the
customer's key, sent with every request, never stored).

An object's ``encryption`` column holds ``{"sse": "AES256"}``, ``{"sse": "SSE-C",
"fingerprint": <HMAC of the key under the master key>, "key_md5": <base64 MD5 of the key>}`` or
``{"sse": "aws:kms", "key_arn": <KMS key ARN>, "data_key": <base64 KMS ciphertext of the data
key>, "context": <base64 JSON of the caller's encryption context, if any>, "bucket_key": bool}``.
For SSE-KMS the data key (GenerateDataKey with the context ``aws:s3:arn`` = the object's ARN, or
the bucket's with an S3 Bucket Key, plus the caller's) is the key-encryption key the sealer wraps
each blob's own key with; reading asks KMS to decrypt it again (a disabled key fails the GET).
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
from minicloud.aws.errors import DynamicServiceError, ServiceError, error_code, error_status
from minicloud.services.kms.keyring import KeyRing
from minicloud.services.kms.store import Key
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
from minicloud.services.s3.names import bucket_arn, object_arn
from minicloud.services.s3.store import Bucket, ObjectRow

DEFAULT_RULES = [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": False}]


@dataclass(frozen=True, slots=True)
class ObjectKey:
    """How one object's data is (to be) sealed: the key-encryption key, what is stored of it,
    and the response members that say so."""

    kek: bytes
    stored: dict[str, Any]

    def sealer(self) -> Sealer:
        return Sealer(self.kek)

    def members(self) -> dict[str, Any]:
        return response_members(self.stored)


def response_members(stored: dict[str, Any] | None) -> dict[str, Any]:
    if not stored:
        return {}
    if stored.get("sse") == "SSE-C":
        return {"SSECustomerAlgorithm": "AES256", "SSECustomerKeyMD5": stored["key_md5"]}
    if stored.get("sse") == "aws:kms":
        members: dict[str, Any] = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": stored["key_arn"]}
        if stored.get("bucket_key"):
            members["BucketKeyEnabled"] = True
        if stored.get("context"):
            members["SSEKMSEncryptionContext"] = stored["context"]
        return members
    return {"ServerSideEncryption": "AES256"}


def stored_encryption(row: ObjectRow) -> dict[str, Any] | None:
    """What is stored of an object's encryption (a new dict each call: its values are strings and flags)."""
    text = row.encryption
    if not text:
        return None
    parsed = _parsed_encryption.get(text)
    if parsed is None:
        parsed = json.loads(text)
        if len(_parsed_encryption) >= 4096:
            _parsed_encryption.clear()
        _parsed_encryption[text] = parsed
    return dict(parsed)


# Objects sealed under the same settings store the same text (SSE-S3: '{"sse": "AES256"}'): parsed once.
_parsed_encryption: dict[str, dict[str, Any]] = {}


def kms_error(error: ServiceError) -> ServiceError:
    """A KMS error met while serving an S3 request, as S3 answers it (``KMS.DisabledException``...)."""
    if isinstance(error, DynamicServiceError) or error_status(error) == 403:
        return error
    return DynamicServiceError(f"KMS.{error_code(error)}", 400, error.message or "The ciphertext refers to a "
                               "customer master key that does not exist, does not exist in this region, or you "
                               "are not allowed to access.")


def caller_context(header: Any) -> dict[str, str]:
    """x-amz-server-side-encryption-context: base64 of a JSON object of strings."""
    if header is None:
        return {}
    try:
        value = json.loads(base64.b64decode(str(header), validate=True))
    except (binascii.Error, ValueError):
        value = None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise InvalidArgument("The header 'x-amz-server-side-encryption-context' shall be Base64-encoded UTF-8 "
                              "string holding JSON which represents a string-string map",
                              ArgumentName="x-amz-server-side-encryption-context")
    return value


def kms_context(stored: dict[str, Any], resource_arn: str) -> dict[str, str]:
    context = caller_context(stored["context"]) if stored.get("context") else {}
    return {**context, "aws:s3:arn": resource_arn}


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


async def open_kms_data_key(ring: KeyRing, ctx: RequestContext, stored: dict[str, Any], bucket: str,
                            key: str) -> bytes:
    """The data key of an SSE-KMS object (its stored ``encryption``), decrypted by KMS for the caller
    of ``ctx`` (kms:Decrypt on the key), as S3 answers its errors. Other services that read S3
    objects' data (Lambda's code from S3) open SSE-KMS objects with it."""
    resource = bucket_arn(bucket) if stored.get("bucket_key") else object_arn(bucket, key)
    blob = base64.b64decode(stored["data_key"])
    try:
        kms_key: Key = await ring.key_of(blob)
        await ring.authorize(ctx, kms_key, "Decrypt")
        return ring.decrypt(kms_key, blob, kms_context(stored, resource))
    except ServiceError as error:
        raise kms_error(error) from None


class EncryptionOperations(S3Base):
    master_key: MasterKey
    key_ring: KeyRing

    def _master(self) -> MasterKey:
        found = getattr(self, "master_key", None)
        if found is None:
            found = self.master_key = MasterKey.load_or_create(self.runtime.config.data_dir / "s3" / "master.key")
        return found

    def _kms(self) -> KeyRing:
        found = getattr(self, "key_ring", None)
        if found is None:
            found = self.key_ring = KeyRing(self.db, self.runtime.config.data_dir)
        return found

    # -- bucket default encryption -------------------------------------------------------------------
    async def put_bucket_encryption(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = await self.bucket_for(ctx, params, "PutEncryptionConfiguration")
        rules = (params.get("ServerSideEncryptionConfiguration") or {}).get("Rules") or []
        if len(rules) != 1:
            raise MalformedXML()
        default = rules[0].get("ApplyServerSideEncryptionByDefault") or {}
        algorithm = default.get("SSEAlgorithm")
        if algorithm == "aws:kms:dsse":
            raise NotImplementedFeature("DSSE-KMS (dual-layer) is not implemented by minicloud: use aws:kms.")
        if algorithm not in ("AES256", "aws:kms"):
            raise MalformedXML()
        if default.get("KMSMasterKeyID") and algorithm != "aws:kms":
            raise InvalidArgument("a KMSMasterKeyID is not applicable if the default sse algorithm is not aws:kms "
                                  "or aws:kms:dsse", ArgumentName="ApplyServerSideEncryptionByDefault")
        by_default = {"SSEAlgorithm": algorithm}
        if default.get("KMSMasterKeyID"):
            by_default["KMSMasterKeyID"] = str(default["KMSMasterKeyID"])
        rule = {"ApplyServerSideEncryptionByDefault": by_default,
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
    async def write_key(self, params: dict[str, Any], bucket: Bucket, ctx: RequestContext) -> ObjectKey:
        """The key a write seals with: SSE-C headers, else x-amz-server-side-encryption, else the
        bucket's default (SSE-S3, or SSE-KMS with its KMSMasterKeyID)."""
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
        if requested == "aws:kms:dsse":
            raise NotImplementedFeature("DSSE-KMS (dual-layer) is not implemented by minicloud: use aws:kms.")
        if requested is not None and requested not in ("AES256", "aws:kms"):
            raise InvalidArgument("The encryption method specified is not supported",
                                  ArgumentName="x-amz-server-side-encryption", ArgumentValue=str(requested))
        if requested != "aws:kms" and (params.get("SSEKMSKeyId") or params.get("SSEKMSEncryptionContext")):
            raise InvalidArgument("Server Side Encryption with AWS KMS managed key requires HTTP header "
                                  "x-amz-server-side-encryption : aws:kms",
                                  ArgumentName="x-amz-server-side-encryption-aws-kms-key-id")
        default: dict[str, Any] = (bucket.config("encryption") or DEFAULT_RULES)[0]
        by_default: dict[str, Any] = default.get("ApplyServerSideEncryptionByDefault") or {}
        if requested == "aws:kms" or (requested is None and by_default.get("SSEAlgorithm") == "aws:kms"):
            key_id = params.get("SSEKMSKeyId") if requested == "aws:kms" else by_default.get("KMSMasterKeyID")
            bucket_key = params.get("BucketKeyEnabled")
            if bucket_key is None:
                bucket_key = bool(default.get("BucketKeyEnabled"))
            return await self._kms_write_key(ctx, params, bucket, key_id, bool(bucket_key))
        return ObjectKey(self._master().key, {"sse": "AES256"})

    async def _kms_write_key(self, ctx: RequestContext, params: dict[str, Any], bucket: Bucket,
                             key_id: Any, bucket_key: bool) -> ObjectKey:
        """A new data key from KMS under the named key (or the account's aws/s3 key)."""
        context = caller_context(params.get("SSEKMSEncryptionContext"))
        ring = self._kms()
        try:
            if key_id:
                key = await ring.find(bucket.account_id, bucket.region, str(key_id))
            else:
                key = await ring.managed_key(bucket.account_id, bucket.region, "s3", ctx.now)
            await ring.authorize(ctx, key, "GenerateDataKey")
            resource = bucket_arn(bucket.name) if bucket_key else object_arn(bucket.name, params["Key"])
            data_key, blob = ring.generate_data_key(key, 32, {**context, "aws:s3:arn": resource})
        except ServiceError as error:
            raise kms_error(error) from None
        stored: dict[str, Any] = {"sse": "aws:kms", "key_arn": key.arn, "data_key": base64.b64encode(blob).decode(),
                                  "bucket_key": bucket_key}
        if context:
            stored["context"] = base64.b64encode(json.dumps(context).encode()).decode()
        return ObjectKey(data_key, stored)

    async def _kms_read_key(self, ctx: RequestContext, stored: dict[str, Any], bucket: str, key: str) -> bytes:
        return await open_kms_data_key(self._kms(), ctx, stored, bucket, key)

    async def upload_key(self, params: dict[str, Any], stored: dict[str, Any] | None, ctx: RequestContext,
                         upload: Any) -> ObjectKey | None:
        """The key an upload's parts seal with: the upload's own (SSE-C: the same key must come
        with every part; SSE-KMS: its data key, decrypted by KMS again)."""
        if not stored:
            return None
        return await self._open(stored, params.get("SSECustomerAlgorithm"), params.get("SSECustomerKey"),
                                params.get("SSECustomerKeyMD5"), ctx, upload.bucket, upload.key, upload=True)

    async def read_key(self, params: dict[str, Any], row: ObjectRow, ctx: RequestContext, *,
                       copy_source: bool = False, decrypt: bool = True) -> bytes | None:
        """The key-encryption key that opens an object's data (None: stored in the clear, or an
        SSE-KMS object whose data is not read: HEAD does not ask KMS)."""
        stored = stored_encryption(row)
        if not stored:
            return None
        prefix = "CopySource" if copy_source else ""
        key = await self._open(stored, params.get(f"{prefix}SSECustomerAlgorithm"),
                               params.get(f"{prefix}SSECustomerKey"), params.get(f"{prefix}SSECustomerKeyMD5"),
                               ctx, row.bucket, row.key, decrypt=decrypt)
        return key.kek if key is not None else None

    async def _open(self, stored: dict[str, Any], algorithm: Any, key: Any, key_md5: Any, ctx: RequestContext,
                    bucket: str, object_key: str, *, upload: bool = False, decrypt: bool = True) -> ObjectKey | None:
        customer = _customer_key(algorithm, key, key_md5)
        if stored.get("sse") != "SSE-C":
            if customer is not None and not upload:
                raise InvalidRequest("The encryption parameters are not applicable to this object.")
            if stored.get("sse") == "aws:kms":
                if not decrypt:
                    return None
                return ObjectKey(await self._kms_read_key(ctx, stored, bucket, object_key), stored)
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
