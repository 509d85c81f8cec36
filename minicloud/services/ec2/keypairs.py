"""Key pairs: made here (ed25519 or RSA, the private key returned once and never kept) or imported
(an OpenSSH public key). Fingerprints are computed as EC2 computes them: for a created RSA key the
SHA-1 of its PKCS#8 DER private key, for an imported RSA key the MD5 of its DER public key, for
ed25519 the base64 SHA-256 of the OpenSSH public key blob."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from minicloud.aws.context import RequestContext
from minicloud.services.ec2 import store
from minicloud.services.ec2.base import Ec2Base
from minicloud.services.ec2.errors import (
    InvalidKeyPairDuplicate,
    InvalidKeyPairFormat,
    InvalidKeyPairNotFound,
    InvalidParameterValue,
    MissingParameter,
)
from minicloud.services.ec2.filters import member
from minicloud.services.ec2.ids import new_id
from minicloud.services.ec2.store import Resource

KEY_FILTERS = {"key-pair-id": member("KeyPairId"), "key-name": member("KeyName"),
               "fingerprint": member("KeyFingerprint"), "key-type": member("KeyType")}
_NAME = re.compile(r"^[\x20-\x7e]{1,255}$")


def _colons(digest: bytes) -> str:
    return ":".join(f"{b:02x}" for b in digest)


def _openssh_blob(public_line: str) -> bytes:
    return base64.b64decode(public_line.split()[1])


def ed25519_fingerprint(public_line: str) -> str:
    return base64.b64encode(hashlib.sha256(_openssh_blob(public_line)).digest()).decode()


def generate(key_type: str) -> tuple[str, str, str]:
    """(private key material as EC2 returns it, OpenSSH public key, fingerprint)."""
    if key_type == "ed25519":
        ed_key = ed25519.Ed25519PrivateKey.generate()
        private = ed_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                       serialization.NoEncryption()).decode()
        public_line = ed_key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                       serialization.PublicFormat.OpenSSH).decode()
        return private, public_line, ed25519_fingerprint(public_line)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = rsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                    serialization.NoEncryption()).decode()
    pkcs8 = rsa_key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
    public_line = rsa_key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                    serialization.PublicFormat.OpenSSH).decode()
    return private, public_line, _colons(hashlib.sha1(pkcs8, usedforsecurity=False).digest())


def imported(material: bytes) -> tuple[str, str, str]:
    """(key type, OpenSSH public key, fingerprint) of an imported public key."""
    text = material.decode("utf-8", "replace").strip()
    key: Any
    try:
        if text.startswith("ssh-") or text.startswith("ecdsa-"):
            key = serialization.load_ssh_public_key(text.encode())
        else:
            key = serialization.load_pem_public_key(text.encode())
    except (ValueError, binascii.Error, TypeError):
        raise InvalidKeyPairFormat("Key is not in valid OpenSSH public key format") from None
    if not isinstance(key, (ed25519.Ed25519PublicKey, rsa.RSAPublicKey)):
        raise InvalidKeyPairFormat("Key is not in valid OpenSSH public key format: only RSA and ED25519 are supported")
    public_line = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "ed25519", public_line, ed25519_fingerprint(public_line)
    if key.key_size < 1024:
        raise InvalidKeyPairFormat("Key is not in valid OpenSSH public key format: RSA keys need 1024 bits")
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "rsa", public_line, _colons(hashlib.md5(der, usedforsecurity=False).digest())


def key_view(key: Resource, include_public: bool = False) -> dict[str, Any]:
    out = {k: v for k, v in key.doc.items() if not k.startswith("_")}
    out["CreateTime"] = key.created_at
    if include_public:
        out["PublicKey"] = key.doc["_public_key"]
    return out


class KeyPairsMixin(Ec2Base):
    async def create_key_pair(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await self.begin(ctx, params, "CreateKeyPair", f"key-pair/{params.get('KeyName')}")
        name = self._key_name(params)
        key_type = params.get("KeyType") or "rsa"
        if key_type not in ("rsa", "ed25519"):
            raise InvalidParameterValue(f"Value ({key_type}) for parameter keyType is invalid.")
        if (params.get("KeyFormat") or "pem") != "pem":
            raise InvalidParameterValue("minicloud returns private keys in pem format only (KeyFormat pem)")
        private, public_line, fingerprint = generate(key_type)
        key = await self._store_key(ctx, name, key_type, public_line, fingerprint, params)
        return {**key_view(key), "KeyMaterial": private}

    async def import_key_pair(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await self.begin(ctx, params, "ImportKeyPair", f"key-pair/{params.get('KeyName')}")
        name = self._key_name(params)
        material = params.get("PublicKeyMaterial")
        if not material:
            raise MissingParameter("The request must contain the parameter PublicKeyMaterial")
        if isinstance(material, str):
            material = material.encode()
        key_type, public_line, fingerprint = imported(material)
        key = await self._store_key(ctx, name, key_type, public_line, fingerprint, params)
        return key_view(key)

    @staticmethod
    def _key_name(params: dict[str, Any]) -> str:
        name = params.get("KeyName")
        if not name:
            raise MissingParameter("The request must contain the parameter KeyName")
        if not _NAME.match(name):
            raise InvalidParameterValue(f"Value ({name}) for parameter keyName is invalid.")
        return str(name)

    async def _store_key(self, ctx: RequestContext, name: str, key_type: str, public_line: str, fingerprint: str,
                         params: dict[str, Any]) -> Resource:
        key_id = new_id("key-pair")
        doc = {"KeyPairId": key_id, "KeyName": name, "KeyFingerprint": fingerprint, "KeyType": key_type,
               "Tags": self.tags_for(params, "key-pair"), "_public_key": public_line}
        key = Resource(key_id, ctx.account_id, ctx.region, "key-pair", doc, name=name, created_at=datetime.now(UTC))

        def create(conn: sa.Connection) -> None:
            if store.select(conn, ctx.account_id, ctx.region, "key-pair", name=name):
                raise InvalidKeyPairDuplicate(f"The keypair '{name}' already exists.")
            store.insert(conn, key)
        await self.runtime.db.write(create)
        return key

    async def describe_key_pairs(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await self.begin(ctx, params, "DescribeKeyPairs")
        keys = await self.select(ctx, "key-pair", params.get("KeyPairIds"), params.get("Filters"), KEY_FILTERS,
                                 lambda i: InvalidKeyPairNotFound(f"The key pair '{i}' does not exist"))
        names = params.get("KeyNames")
        if names:
            by_name = {k.name: k for k in keys}
            for name in names:
                if name not in by_name:
                    raise InvalidKeyPairNotFound(f"The key pair '{name}' does not exist")
            keys = [by_name[n] for n in dict.fromkeys(names)]
        return {"KeyPairs": [key_view(k, bool(params.get("IncludePublicKey"))) for k in keys]}

    async def delete_key_pair(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name, key_id = params.get("KeyName"), params.get("KeyPairId")
        if not name and not key_id:
            raise MissingParameter("The request must contain the parameter KeyName or KeyPairId")

        def lookup(conn: sa.Connection) -> list[Resource]:
            return store.select(conn, ctx.account_id, ctx.region, "key-pair", name=name) if name else \
                [k for k in [store.get(conn, key_id or "", kind="key-pair", account_id=ctx.account_id,
                                       region=ctx.region)] if k is not None]
        # Authorized on the key pair's ARN (key-pair/NAME, with its tags); a missing one (EC2 answers
        # success) on the name asked for.
        existing = await self.runtime.db.read(lookup)
        if existing:
            await self.begin_each(ctx, params, "DeleteKeyPair", existing[:1])
        else:
            await self.begin(ctx, params, "DeleteKeyPair", f"key-pair/{name}" if name else "*")

        def delete(conn: sa.Connection) -> str | None:
            found = lookup(conn)
            for key in found:
                store.delete(conn, key.id)
            return found[0].id if found else None
        deleted = await self.runtime.db.write(delete)
        out: dict[str, Any] = {"Return": True}
        if deleted:
            out["KeyPairId"] = deleted
        return out

    async def public_key(self, account_id: str, region: str, name: str) -> str | None:
        found = await self.runtime.db.read(lambda conn: store.select(conn, account_id, region, "key-pair", name=name))
        return str(found[0].doc["_public_key"]) if found else None
