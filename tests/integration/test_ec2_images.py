"""EC2 key pairs and AMIs against a real ``minicloud up``: the registry's library/* images appear as
public AMIs; RegisterImage takes a registry reference in ImageLocation."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from tests.integration.test_ecr import http, push_blob
from tests.integration.test_engine import busybox_rootfs_tar
from tests.support.aws import code
from tests.support.server import MinicloudServer


def push_busybox(server: MinicloudServer, work: Path, repository: str, tag: str,
                 cmd: tuple[str, ...] = ("/bin/sh",)) -> str:
    """Push a busybox root filesystem as ``repository:tag`` into minicloud's registry."""
    work.mkdir(parents=True, exist_ok=True)
    layer = busybox_rootfs_tar(work).read_bytes()
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "config": {"Cmd": list(cmd), "Env": ["PATH=/bin:/usr/bin:/sbin:/usr/sbin"]},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": push_blob(server, repository, config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": push_blob(server, repository, layer), "size": len(layer)}]}).encode()
    status, _, body = http(server, "PUT", f"/v2/{repository}/manifests/{tag}", manifest,
                           {"content-type": "application/vnd.oci.image.manifest.v1+json"})
    assert status == 201, body
    return f"{repository}:{tag}"


@pytest.fixture(scope="module")
def ec2(server: MinicloudServer) -> Any:
    return server.client("ec2")


def test_created_key_pairs(ec2: Any, tmp_path: Path) -> None:
    name = f"k-{uuid.uuid4().hex[:8]}"
    created = ec2.create_key_pair(KeyName=name)
    assert created["KeyPairId"].startswith("key-") and created["KeyMaterial"].startswith(
        "-----BEGIN RSA PRIVATE KEY-----")
    private = serialization.load_pem_private_key(created["KeyMaterial"].encode(), None)
    pkcs8 = private.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
    assert created["KeyFingerprint"] == ":".join(f"{b:02x}" for b in hashlib.sha1(pkcs8).digest())
    with pytest.raises(ClientError) as err:
        ec2.create_key_pair(KeyName=name)
    assert code(err) == "InvalidKeyPair.Duplicate"
    ed = ec2.create_key_pair(KeyName=name + "-ed", KeyType="ed25519")
    key_file = tmp_path / "ed.pem"
    key_file.write_text(ed["KeyMaterial"])
    key_file.chmod(0o600)
    listed = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(key_file)], capture_output=True,
                            text=True, check=True).stdout
    assert ed["KeyFingerprint"].rstrip("=") in listed
    described = ec2.describe_key_pairs(KeyNames=[name, name + "-ed"], IncludePublicKey=True)["KeyPairs"]
    assert [k["KeyType"] for k in described] == ["rsa", "ed25519"]
    assert "KeyMaterial" not in described[0] and described[1]["PublicKey"].startswith("ssh-ed25519 ")
    found = ec2.describe_key_pairs(Filters=[{"Name": "key-type", "Values": ["ed25519"]},
                                            {"Name": "key-name", "Values": [name + "*"]}])["KeyPairs"]
    assert [k["KeyName"] for k in found] == [name + "-ed"]
    ec2.delete_key_pair(KeyName=name)
    ec2.delete_key_pair(KeyPairId=ed["KeyPairId"])
    with pytest.raises(ClientError) as err:
        ec2.describe_key_pairs(KeyNames=[name])
    assert code(err) == "InvalidKeyPair.NotFound"


def test_imported_key_pairs(ec2: Any, server: MinicloudServer, tmp_path: Path) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    line = rsa_key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    name = f"imp-{uuid.uuid4().hex[:8]}"
    imported = ec2.import_key_pair(KeyName=name, PublicKeyMaterial=line)
    der = rsa_key.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    assert imported["KeyFingerprint"] == ":".join(f"{b:02x}" for b in hashlib.md5(der).digest())
    ed_line = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    pub = tmp_path / "id.pub"
    pub.write_bytes(ed_line + b" me@host\n")
    out = server.aws_json("ec2", "import-key-pair", "--key-name", name + "-ed",
                          "--public-key-material", f"fileb://{pub}")
    blob = base64.b64decode(ed_line.split()[1])
    assert out["KeyFingerprint"] == base64.b64encode(hashlib.sha256(blob).digest()).decode()
    with pytest.raises(ClientError) as err:
        ec2.import_key_pair(KeyName=name + "-bad", PublicKeyMaterial=b"ssh-rsa not-a-key")
    assert code(err) == "InvalidKeyPair.Format"
    for key in (name, name + "-ed"):
        ec2.delete_key_pair(KeyName=key)


def test_registry_images_are_public_amis(ec2: Any, server: MinicloudServer, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    push_busybox(server, tmp_path, "library/busybox", tag)
    images = ec2.describe_images(Owners=["minicloud"], Filters=[
        {"Name": "name", "Values": [f"busybox-{tag}-*"]}])["Images"]
    assert len(images) == 1
    image = images[0]
    assert image["Name"] == f"busybox-{tag}-amd64-minicloud" and image["ImageOwnerAlias"] == "minicloud"
    assert image["Public"] is True and image["State"] == "available" and image["Architecture"] == "x86_64"
    again = ec2.describe_images(ImageIds=[image["ImageId"]])["Images"]
    assert again[0]["ImageId"] == image["ImageId"]
    assert ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "architecture", "Values": ["arm64"]}])[
        "Images"] == []
    with pytest.raises(ClientError) as err:
        ec2.describe_images(ImageIds=["ami-0123456789abcdef0"])
    assert code(err) == "InvalidAMIID.NotFound"
    with pytest.raises(ClientError) as err:
        ec2.describe_images(ImageIds=["nope"])
    assert code(err) == "InvalidAMIID.Malformed"
    with pytest.raises(ClientError) as err:
        ec2.deregister_image(ImageId=image["ImageId"])
    assert code(err) == "OperationNotPermitted"


def test_register_and_deregister(ec2: Any, server: MinicloudServer, tmp_path: Path) -> None:
    repository = f"team/app-{uuid.uuid4().hex[:6]}"
    reference = push_busybox(server, tmp_path, repository, "v1")
    name = f"app-{uuid.uuid4().hex[:6]}"
    image_id = ec2.register_image(Name=name, ImageLocation=reference, TagSpecifications=[
        {"ResourceType": "image", "Tags": [{"Key": "stage", "Value": "test"}]}])["ImageId"]
    # (other modules' tests may leave images of the same account behind: only this one is looked at)
    mine = [i for i in ec2.describe_images(Owners=["self"])["Images"] if i["ImageId"] == image_id]
    assert [(i["ImageId"], i["Name"], i["Public"]) for i in mine] == [(image_id, name, False)]
    assert mine[0]["Tags"] == [{"Key": "stage", "Value": "test"}]
    with pytest.raises(ClientError) as err:
        ec2.register_image(Name=name, ImageLocation=reference)
    assert code(err) == "InvalidAMIName.Duplicate"
    with pytest.raises(ClientError) as err:
        ec2.register_image(Name=name + "x", ImageLocation=f"{repository}:missing")
    assert code(err) == "InvalidParameterValue"
    ec2.deregister_image(ImageId=image_id)
    assert image_id not in [i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]]
