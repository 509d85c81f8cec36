"""Cryptographic operations: Encrypt, Decrypt, ReEncrypt, GenerateDataKey(WithoutPlaintext),
GenerateRandom. Every ciphertext names its key (see ``ciphertext``); the encryption context is
bound to it as associated data."""

from __future__ import annotations

import secrets
from typing import Any

from minicloud.aws.context import RequestContext
from minicloud.aws.errors import ValidationException
from minicloud.services.kms.base import KmsBase
from minicloud.services.kms.errors import DryRunOperationException, InvalidKeyUsageException
from minicloud.services.kms.store import Key

KEY_SPEC_BYTES = {"AES_256": 32, "AES_128": 16}


def _check_algorithm(params: dict[str, Any], member: str = "EncryptionAlgorithm") -> None:
    algorithm = params.get(member)
    if algorithm is not None and algorithm != "SYMMETRIC_DEFAULT":
        raise InvalidKeyUsageException(f"The encryption algorithm {algorithm} is not valid for a symmetric key.")


def _dry_run(params: dict[str, Any]) -> None:
    if params.get("DryRun"):
        raise DryRunOperationException("The request would have succeeded, but the DryRun option is set.")


def data_key_size(params: dict[str, Any]) -> int:
    spec, count = params.get("KeySpec"), params.get("NumberOfBytes")
    if (spec is None) == (count is None):
        raise ValidationException("Please specify either number of bytes or key spec.")
    if spec is not None:
        if spec not in KEY_SPEC_BYTES:
            raise ValidationException(f"1 validation error detected: Value '{spec}' at 'keySpec' failed to satisfy "
                                      "constraint: Member must satisfy enum value set: [AES_256, AES_128]")
        return KEY_SPEC_BYTES[spec]
    return int(str(count))


class CryptographyOperations(KmsBase):
    async def _crypto_key(self, ctx: RequestContext, params: dict[str, Any], action: str,
                          member: str = "KeyId") -> Key:
        key = await self.customer_key_for(ctx, {"KeyId": params[member]}, action)
        self.keys.check_usable(key)
        return key

    async def encrypt(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        key = await self._crypto_key(ctx, params, "Encrypt")
        _check_algorithm(params)
        _dry_run(params)
        blob = self.keys.encrypt(key, params["Plaintext"], params.get("EncryptionContext"))
        return {"CiphertextBlob": blob, "KeyId": key.arn, "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}

    async def _open(self, ctx: RequestContext, blob: bytes, context: dict[str, str] | None, named: str | None,
                    action: str) -> tuple[Key, bytes]:
        key = await self.keys.key_of(blob)
        await self.keys.authorize(ctx, key, action)
        expected = await self.keys.find(ctx.account_id, ctx.region, named) if named else None
        if key.manager == "AWS":
            await self.customer_key_for(ctx, {"KeyId": key.arn}, action)
        return key, self.keys.decrypt(key, blob, context, expected)

    async def decrypt(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        _check_algorithm(params)
        if params.get("Recipient"):
            raise ValidationException("Recipient (Nitro Enclaves attestation) is not supported by minicloud's KMS.")
        key, plaintext = await self._open(ctx, params["CiphertextBlob"], params.get("EncryptionContext"),
                                          params.get("KeyId"), "Decrypt")
        _dry_run(params)
        return {"KeyId": key.arn, "Plaintext": plaintext, "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}

    async def re_encrypt(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        _check_algorithm(params, "SourceEncryptionAlgorithm")
        _check_algorithm(params, "DestinationEncryptionAlgorithm")
        source, plaintext = await self._open(ctx, params["CiphertextBlob"], params.get("SourceEncryptionContext"),
                                             params.get("SourceKeyId"), "ReEncryptFrom")
        destination = await self._crypto_key(ctx, params, "ReEncryptTo", "DestinationKeyId")
        _dry_run(params)
        blob = self.keys.encrypt(destination, plaintext, params.get("DestinationEncryptionContext"))
        return {"CiphertextBlob": blob, "SourceKeyId": source.arn, "KeyId": destination.arn,
                "SourceEncryptionAlgorithm": "SYMMETRIC_DEFAULT", "DestinationEncryptionAlgorithm": "SYMMETRIC_DEFAULT"}

    async def generate_data_key(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        key = await self._crypto_key(ctx, params, "GenerateDataKey")
        if params.get("Recipient"):
            raise ValidationException("Recipient (Nitro Enclaves attestation) is not supported by minicloud's KMS.")
        size = data_key_size(params)
        _dry_run(params)
        plaintext, blob = self.keys.generate_data_key(key, size, params.get("EncryptionContext"))
        return {"CiphertextBlob": blob, "Plaintext": plaintext, "KeyId": key.arn}

    async def generate_data_key_without_plaintext(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        key = await self._crypto_key(ctx, params, "GenerateDataKeyWithoutPlaintext")
        size = data_key_size(params)
        _dry_run(params)
        _, blob = self.keys.generate_data_key(key, size, params.get("EncryptionContext"))
        return {"CiphertextBlob": blob, "KeyId": key.arn}

    async def generate_random(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await ctx.authorize("kms:GenerateRandom", "*")
        if params.get("CustomKeyStoreId") or params.get("Recipient"):
            raise ValidationException("Custom key stores and Recipient are not supported by minicloud's KMS.")
        count = params.get("NumberOfBytes")
        if count is None:
            raise ValidationException("Please specify the number of bytes.")
        return {"Plaintext": secrets.token_bytes(int(count))}
