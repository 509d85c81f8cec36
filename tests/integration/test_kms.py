"""KMS with boto3 and the AWS CLI against a real minicloud: key life cycle, aliases, the
cryptographic operations, IAM and key-policy enforcement, and AWS's errors for bad input."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.aws import code, status
from tests.support.server import Keys, MinicloudServer


@pytest.fixture
def kms(server: MinicloudServer) -> Any:
    return server.client("kms")


def new_key(kms: Any, **kw: Any) -> dict[str, Any]:
    return dict(kms.create_key(**kw)["KeyMetadata"])


def user_keys(server: MinicloudServer, policy: dict[str, Any] | None = None) -> Keys:
    iam = server.client("iam")
    name = f"kms-user-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    if policy is not None:
        iam.put_user_policy(UserName=name, PolicyName="kms", PolicyDocument=json.dumps(policy))
    made = iam.create_access_key(UserName=name)["AccessKey"]
    return Keys(made["AccessKeyId"], made["SecretAccessKey"])


def test_key_life_cycle(server: MinicloudServer, kms: Any) -> None:
    key = new_key(kms, Description="orders", Tags=[{"TagKey": "team", "TagValue": "shop"}])
    assert key["KeyState"] == "Enabled" and key["Enabled"] is True
    assert key["KeySpec"] == "SYMMETRIC_DEFAULT" and key["KeyUsage"] == "ENCRYPT_DECRYPT"
    assert key["KeyManager"] == "CUSTOMER" and key["Origin"] == "AWS_KMS"
    assert key["Arn"] == f"arn:aws:kms:us-east-1:{server.account_id}:key/{key['KeyId']}"
    for name in (key["KeyId"], key["Arn"]):
        assert kms.describe_key(KeyId=name)["KeyMetadata"]["Description"] == "orders"
    assert kms.list_resource_tags(KeyId=key["KeyId"])["Tags"] == [{"TagKey": "team", "TagValue": "shop"}]
    kms.tag_resource(KeyId=key["KeyId"], Tags=[{"TagKey": "env", "TagValue": "prod"}])
    kms.untag_resource(KeyId=key["KeyId"], TagKeys=["team"])
    assert kms.list_resource_tags(KeyId=key["KeyId"])["Tags"] == [{"TagKey": "env", "TagValue": "prod"}]
    policy = json.loads(kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"])
    assert policy["Statement"][0]["Principal"] == {"AWS": f"arn:aws:iam::{server.account_id}:root"}

    kms.disable_key(KeyId=key["KeyId"])
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "Disabled"
    with pytest.raises(ClientError) as err:
        kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    assert code(err) == "DisabledException" and status(err) == 400
    kms.enable_key(KeyId=key["KeyId"])
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"kept")["CiphertextBlob"]

    for days in (6, 31):
        with pytest.raises(ClientError) as err:
            kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=days)
        assert code(err) == "ValidationException"
    scheduled = kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    assert scheduled["KeyState"] == "PendingDeletion" and scheduled["PendingWindowInDays"] == 7
    meta = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
    assert meta["KeyState"] == "PendingDeletion" and "DeletionDate" in meta
    refused: list[Callable[[], Any]] = [lambda: kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x"),
                                        lambda: kms.decrypt(CiphertextBlob=blob),
                                        lambda: kms.enable_key(KeyId=key["KeyId"])]
    for call in refused:
        with pytest.raises(ClientError) as err:
            call()
        assert code(err) == "KMSInvalidStateException"
    kms.cancel_key_deletion(KeyId=key["KeyId"])
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "Disabled"  # as on AWS
    with pytest.raises(ClientError) as err:
        kms.cancel_key_deletion(KeyId=key["KeyId"])
    assert code(err) == "KMSInvalidStateException"
    kms.enable_key(KeyId=key["KeyId"])
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"kept"


def test_list_keys_pages(kms: Any) -> None:
    made = {new_key(kms)["KeyId"] for _ in range(3)}
    seen: list[str] = []
    page = kms.list_keys(Limit=2)
    while True:
        seen += [k["KeyId"] for k in page["Keys"]]
        assert len(page["Keys"]) <= 2
        if not page["Truncated"]:
            break
        page = kms.list_keys(Limit=2, Marker=page["NextMarker"])
    assert made <= set(seen) and len(seen) == len(set(seen))
    with pytest.raises(ClientError) as err:
        kms.list_keys(Marker="not-a-marker")
    assert code(err) == "InvalidMarkerException"


def test_aliases(server: MinicloudServer, kms: Any) -> None:
    first, second = new_key(kms), new_key(kms)
    name = f"alias/app-{uuid.uuid4().hex[:8]}"
    kms.create_alias(AliasName=name, TargetKeyId=first["KeyId"])
    assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == first["KeyId"]
    alias_arn = f"arn:aws:kms:us-east-1:{server.account_id}:{name}"
    assert kms.describe_key(KeyId=alias_arn)["KeyMetadata"]["KeyId"] == first["KeyId"]
    with pytest.raises(ClientError) as err:
        kms.create_alias(AliasName=name, TargetKeyId=second["KeyId"])
    assert code(err) == "AlreadyExistsException"
    for bad, expected in (("no-prefix", "InvalidAliasNameException"), ("alias/aws/mine", "InvalidAliasNameException"),
                          ("alias/bad name", "ValidationException")):  # the model's pattern comes first
        with pytest.raises(ClientError) as err:
            kms.create_alias(AliasName=bad, TargetKeyId=first["KeyId"])
        assert code(err) == expected, bad
    kms.update_alias(AliasName=name, TargetKeyId=second["KeyId"])
    listed = kms.list_aliases(KeyId=second["KeyId"])["Aliases"]
    assert [(a["AliasName"], a["AliasArn"], a["TargetKeyId"]) for a in listed] == [(name, alias_arn, second["KeyId"])]
    assert kms.list_aliases(KeyId=first["KeyId"])["Aliases"] == []
    blob = kms.encrypt(KeyId=name, Plaintext=b"via alias")
    assert blob["KeyId"] == second["Arn"]
    kms.delete_alias(AliasName=name)
    gone: list[Callable[[], Any]] = [lambda: kms.describe_key(KeyId=name), lambda: kms.delete_alias(AliasName=name),
                                     lambda: kms.update_alias(AliasName=name, TargetKeyId=first["KeyId"])]
    for call in gone:
        with pytest.raises(ClientError) as err:
            call()
        assert code(err) == "NotFoundException"


def test_encrypt_decrypt_and_data_keys(kms: Any) -> None:
    key, other = new_key(kms), new_key(kms)
    context = {"purpose": "test", "tenant": "a"}
    sealed = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"attack at dawn", EncryptionContext=context)
    assert sealed["KeyId"] == key["Arn"] and sealed["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    blob = sealed["CiphertextBlob"]
    assert b"attack at dawn" not in blob
    opened = kms.decrypt(CiphertextBlob=blob, EncryptionContext=context)  # no KeyId needed
    assert opened["Plaintext"] == b"attack at dawn" and opened["KeyId"] == key["Arn"]
    for wrong in ({}, {"purpose": "test"}, {"purpose": "test", "tenant": "b"}):
        with pytest.raises(ClientError) as err:
            kms.decrypt(CiphertextBlob=blob, EncryptionContext=wrong)
        assert code(err) == "InvalidCiphertextException"
    with pytest.raises(ClientError) as err:
        kms.decrypt(CiphertextBlob=blob, EncryptionContext=context, KeyId=other["KeyId"])
    assert code(err) == "IncorrectKeyException"
    with pytest.raises(ClientError) as err:
        kms.decrypt(CiphertextBlob=blob[:-1] + bytes([blob[-1] ^ 1]), EncryptionContext=context)
    assert code(err) == "InvalidCiphertextException"

    moved = kms.re_encrypt(CiphertextBlob=blob, SourceEncryptionContext=context, DestinationKeyId=other["Arn"],
                           DestinationEncryptionContext={"new": "ctx"})
    assert moved["SourceKeyId"] == key["Arn"] and moved["KeyId"] == other["Arn"]
    assert kms.decrypt(CiphertextBlob=moved["CiphertextBlob"], EncryptionContext={"new": "ctx"})["Plaintext"] == \
        b"attack at dawn"

    data = kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256", EncryptionContext={"f": "1"})
    assert len(data["Plaintext"]) == 32
    assert kms.decrypt(CiphertextBlob=data["CiphertextBlob"], EncryptionContext={"f": "1"})["Plaintext"] == \
        data["Plaintext"]
    assert len(kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_128")["Plaintext"]) == 16
    assert len(kms.generate_data_key(KeyId=key["KeyId"], NumberOfBytes=64)["Plaintext"]) == 64
    bare = kms.generate_data_key_without_plaintext(KeyId=key["KeyId"], KeySpec="AES_256")
    assert "Plaintext" not in bare
    assert len(kms.decrypt(CiphertextBlob=bare["CiphertextBlob"])["Plaintext"]) == 32
    random = kms.generate_random(NumberOfBytes=48)["Plaintext"]
    assert len(random) == 48 and random != kms.generate_random(NumberOfBytes=48)["Plaintext"]


def test_bad_input(kms: Any) -> None:
    key = new_key(kms)
    cases: list[tuple[Callable[[], Any], str]] = [
        (lambda: kms.describe_key(KeyId="nope"), "NotFoundException"),
        (lambda: kms.describe_key(KeyId=str(uuid.uuid4())), "NotFoundException"),
        (lambda: kms.encrypt(KeyId="alias/missing", Plaintext=b"x"), "NotFoundException"),
        (lambda: kms.generate_data_key(KeyId=key["KeyId"]), "ValidationException"),
        (lambda: kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256", NumberOfBytes=32),
         "ValidationException"),
        (lambda: kms.generate_data_key(KeyId=key["KeyId"], NumberOfBytes=2000), "ValidationException"),
        (lambda: kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x" * 4097), "ValidationException"),
        (lambda: kms.decrypt(CiphertextBlob=b"garbage that is no ciphertext at all, not even close!!"),
         "InvalidCiphertextException"),
        (lambda: kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy="{not json"),
         "MalformedPolicyDocumentException"),
        (lambda: kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionAlgorithm="RSAES_OAEP_SHA_256"),
         "InvalidKeyUsageException"),
    ]
    for call, expected in cases:
        with pytest.raises(ClientError) as err:
            call()
        assert code(err) == expected and status(err) == 400
    with pytest.raises(ClientError) as err:
        kms.create_key(KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")
    assert code(err) == "NotImplemented"


def test_iam_and_key_policy_enforcement(server: MinicloudServer, kms: Any) -> None:
    key = new_key(kms)
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"s")["CiphertextBlob"]
    nobody = server.client("kms", user_keys(server))
    denied: list[Callable[[], Any]] = [lambda: nobody.encrypt(KeyId=key["KeyId"], Plaintext=b"x"),
                                       lambda: nobody.decrypt(CiphertextBlob=blob), lambda: nobody.create_key(),
                                       lambda: nobody.describe_key(KeyId=key["Arn"])]
    for call in denied:
        with pytest.raises(ClientError) as err:
            call()
        assert code(err) == "AccessDeniedException"
        assert "kms:" in err.value.response["Error"]["Message"]

    encrypt_only = user_keys(server, {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["kms:Encrypt", "kms:DescribeKey"], "Resource": key["Arn"]}]})
    writer = server.client("kms", encrypt_only)
    mine = writer.encrypt(KeyId=key["Arn"], Plaintext=b"w")["CiphertextBlob"]
    with pytest.raises(ClientError) as err:
        writer.decrypt(CiphertextBlob=mine)
    assert code(err) == "AccessDeniedException"
    other = new_key(kms)
    with pytest.raises(ClientError) as err:
        writer.encrypt(KeyId=other["Arn"], Plaintext=b"w")
    assert code(err) == "AccessDeniedException"

    # the key policy is the key's resource policy: an explicit deny there beats the IAM allow
    arn_of_writer = server.client("sts", encrypt_only).get_caller_identity()["Arn"]
    policy = json.loads(kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"])
    policy["Statement"].append({"Sid": "NoWriter", "Effect": "Deny", "Principal": {"AWS": arn_of_writer},
                                "Action": "kms:Encrypt", "Resource": "*"})
    kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=json.dumps(policy))
    with pytest.raises(ClientError) as err:
        writer.encrypt(KeyId=key["Arn"], Plaintext=b"w")
    assert code(err) == "AccessDeniedException"
    assert kms.encrypt(KeyId=key["Arn"], Plaintext=b"root still may")["KeyId"] == key["Arn"]


def test_aws_cli(server: MinicloudServer, tmp_path: Any) -> None:
    created = server.aws_json("kms", "create-key", "--description", "cli key")["KeyMetadata"]
    name = f"alias/cli-{uuid.uuid4().hex[:8]}"
    server.aws("kms", "create-alias", "--alias-name", name, "--target-key-id", created["KeyId"])
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"from the command line\n")
    sealed = server.aws_json("kms", "encrypt", "--key-id", name, "--plaintext", f"fileb://{secret}",
                             "--encryption-context", "app=cli")
    blob = tmp_path / "blob.bin"
    blob.write_bytes(base64.b64decode(sealed["CiphertextBlob"]))
    opened = server.aws_json("kms", "decrypt", "--ciphertext-blob", f"fileb://{blob}",
                             "--encryption-context", "app=cli")
    assert base64.b64decode(opened["Plaintext"]) == b"from the command line\n"
    assert opened["KeyId"] == created["Arn"]
    failed = server.aws("kms", "decrypt", "--ciphertext-blob", f"fileb://{blob}", check=False)
    assert failed.returncode != 0 and "InvalidCiphertextException" in failed.stderr
    aliases = server.aws_json("kms", "list-aliases", "--key-id", created["KeyId"])["Aliases"]
    assert [a["AliasName"] for a in aliases] == [name]
    server.aws("kms", "schedule-key-deletion", "--key-id", created["KeyId"], "--pending-window-in-days", "7")
    state = server.aws_json("kms", "describe-key", "--key-id", name)["KeyMetadata"]["KeyState"]
    assert state == "PendingDeletion"


def test_a_key_policy_without_the_account_switches_iam_off(server: MinicloudServer, kms: Any) -> None:
    named_keys = user_keys(server)
    named_arn = server.client("sts", named_keys).get_caller_identity()["Arn"]
    iam_admin = server.client("kms", user_keys(server, {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}))
    only_named = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": named_arn}, "Action": ["kms:Encrypt", "kms:Decrypt"],
         "Resource": "*"}]})
    with pytest.raises(ClientError) as err:  # the lockout safety check
        kms.create_key(Policy=only_named)
    assert code(err) == "MalformedPolicyDocumentException"
    key = new_key(kms, Policy=only_named, BypassPolicyLockoutSafetyCheck=True)
    named = server.client("kms", named_keys)
    blob = named.encrypt(KeyId=key["Arn"], Plaintext=b"mine")["CiphertextBlob"]
    assert named.decrypt(CiphertextBlob=blob)["Plaintext"] == b"mine"
    for client in (iam_admin, kms):  # IAM's kms:* does not count, nor does being the root user
        with pytest.raises(ClientError) as err:
            client.decrypt(CiphertextBlob=blob)
        assert code(err) == "AccessDeniedException"
    other = new_key(kms)
    with pytest.raises(ClientError) as err:
        kms.put_key_policy(KeyId=other["KeyId"], PolicyName="default", Policy=only_named)
    assert code(err) == "MalformedPolicyDocumentException"
