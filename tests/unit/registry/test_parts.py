"""Manifest parsing, token signing and lifecycle rules, without HTTP."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from minicloud.registry.auth import Signer, effective_policy
from minicloud.registry.errors import RegistryError
from minicloud.registry.manifests import DOCKER_LIST, OCI_INDEX, OCI_MANIFEST, parse_manifest
from minicloud.services.ecr.errors import InvalidParameterException
from minicloud.services.ecr.lifecycle import ImageInfo, expired, parse_lifecycle_policy

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


def test_manifest_media_type_from_body_header_or_shape() -> None:
    body = json.dumps({"schemaVersion": 2, "config": {"mediaType": "x", "digest": D1, "size": 1},
                       "layers": [], "unknown": {"field": True}}).encode()
    assert parse_manifest(body, None).media_type == OCI_MANIFEST
    assert parse_manifest(body, OCI_MANIFEST + "; charset=utf-8").media_type == OCI_MANIFEST
    index = json.dumps({"schemaVersion": 2, "manifests": [{"mediaType": OCI_MANIFEST, "digest": D1, "size": 5,
                                                          "data": "e30="}]}).encode()
    parsed = parse_manifest(index, DOCKER_LIST)
    assert parsed.media_type == DOCKER_LIST and [str(c.digest) for c in parsed.children] == [D1]
    assert parse_manifest(index, "application/json").media_type == OCI_INDEX


def test_manifest_refusals() -> None:
    for body, ctype in [
        (b"{", OCI_MANIFEST),
        (b'"string"', OCI_MANIFEST),
        (json.dumps({"schemaVersion": 1, "fsLayers": []}).encode(), None),
        (json.dumps({"mediaType": OCI_MANIFEST, "config": {"digest": "sha256:zz", "size": 1}}).encode(), None),
        (json.dumps({"mediaType": OCI_MANIFEST, "config": {"digest": D1, "size": -1}}).encode(), None),
        (json.dumps({"mediaType": OCI_INDEX, "manifests": []}).encode(), OCI_MANIFEST),
        (json.dumps({"mediaType": OCI_MANIFEST, "layers": []}).encode(), None),
    ]:
        with pytest.raises(RegistryError) as err:
            parse_manifest(body, ctype)
        assert err.value.code == "MANIFEST_INVALID", body


def test_artifact_type_subject_and_foreign_layers() -> None:
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                       "config": {"mediaType": "application/vnd.example+json", "digest": D1, "size": 2},
                       "layers": [{"mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar",
                                   "digest": D2, "size": 9, "urls": ["http://x"]}],
                       "subject": {"mediaType": OCI_MANIFEST, "digest": D2, "size": 3}}).encode()
    m = parse_manifest(body, OCI_MANIFEST)
    assert m.artifact_type == "application/vnd.example+json" and str(m.subject) == D2
    assert m.blobs[1].foreign and m.image_size == 11
    assert parse_manifest(body, OCI_MANIFEST, "sha512").digest.algorithm == "sha512"


def test_signer_refuses_tampering_expiry_and_other_purposes() -> None:
    signer = Signer(b"k" * 32)
    token = signer.sign("token", {"exp": time.time() + 60, "x": 1})
    assert signer.verify("token", token) is not None
    assert signer.verify("ecr", token) is None
    assert signer.verify("token", token[:-2] + "AA") is None
    assert Signer(b"other" * 8).verify("token", token) is None
    assert signer.verify("token", signer.sign("token", {"exp": time.time() - 1})) is None
    assert signer.verify("token", "garbage") is None


def test_repository_policies_get_the_repository_as_resource() -> None:
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*",
                                                                 "Action": "ecr:*"}]})
    effective = json.loads(effective_policy(policy, "arn:aws:ecr:us-east-1:1:repository/a") or "")
    assert effective["Statement"][0]["Resource"] == "arn:aws:ecr:us-east-1:1:repository/a"
    assert effective_policy(None, "arn") is None


def _policy(*rules: dict[str, object]) -> str:
    return json.dumps({"rules": list(rules)})


def _rule(priority: int, **selection: object) -> dict[str, object]:
    return {"rulePriority": priority, "selection": selection, "action": {"type": "expire"}}


def test_lifecycle_rules_claim_images_in_priority_order() -> None:
    now = datetime(2026, 1, 31, tzinfo=UTC)
    images = [ImageInfo(f"sha256:{i}", tags, now - timedelta(days=age)) for i, (tags, age) in enumerate([
        (("prod-1",), 30), (("prod-2",), 20), (("prod-3",), 10), (("dev-1",), 40), ((), 15), ((), 1)])]
    rules = parse_lifecycle_policy(_policy(
        _rule(1, tagStatus="tagged", tagPrefixList=["prod"], countType="imageCountMoreThan", countNumber=2),
        _rule(2, tagStatus="untagged", countType="sinceImagePushed", countUnit="days", countNumber=7),
        _rule(3, tagStatus="any", countType="imageCountMoreThan", countNumber=5)))
    assert sorted(i.digest for i in expired(rules, images, now)) == ["sha256:0", "sha256:4"]
    patterns = parse_lifecycle_policy(_policy(
        _rule(1, tagStatus="tagged", tagPatternList=["dev-*"], countType="sinceImagePushed", countUnit="days",
              countNumber=30)))
    assert [i.digest for i in expired(patterns, images, now)] == ["sha256:3"]


def test_lifecycle_policy_validation() -> None:
    for text in ("{", _policy(), _policy(_rule(1, tagStatus="tagged", countType="imageCountMoreThan",
                                                countNumber=1)),
                 _policy(_rule(1, tagStatus="any", countType="imageCountMoreThan", countNumber=1),
                         _rule(2, tagStatus="untagged", countType="imageCountMoreThan", countNumber=1)),
                 _policy(_rule(1, tagStatus="untagged", countType="sinceImagePushed", countNumber=1))):
        with pytest.raises(InvalidParameterException):
            parse_lifecycle_policy(text)
