"""Amazon ECR through boto3 and the AWS CLI against a real ``minicloud up``; the same repositories
answer on /v2/."""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.aws import code
from tests.support.server import Keys, MinicloudServer

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def name() -> str:
    return f"ecr-test/{uuid.uuid4().hex[:10]}"


def http(server: MinicloudServer, method: str, path: str, body: bytes = b"",
         headers: dict[str, str] | None = None, keys: Keys | None = None) -> tuple[int, dict[str, str], bytes]:
    keys = keys or server.root
    assert keys is not None
    auth = base64.b64encode(f"{keys.access_key_id}:{keys.secret_access_key}".encode()).decode()
    req = urllib.request.Request(server.endpoint + path, data=body if method in ("POST", "PUT", "PATCH") else None,
                                 method=method, headers={"authorization": f"Basic {auth}", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def push_blob(server: MinicloudServer, repo: str, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    status, _, body = http(server, "POST", f"/v2/{repo}/blobs/uploads/?digest={digest}", data)
    assert status == 201, body
    return digest


def manifest(server: MinicloudServer, repo: str, layer: bytes) -> str:
    config = b'{"os":"linux","architecture":"amd64"}'
    return json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": push_blob(server, repo, config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": push_blob(server, repo, layer), "size": len(layer)}]})


def test_repository_life_cycle(server: MinicloudServer) -> None:
    ecr = server.client("ecr")
    repo = name()
    created = ecr.create_repository(repositoryName=repo, tags=[{"Key": "team", "Value": "a"}])["repository"]
    assert created["repositoryArn"] == f"arn:aws:ecr:us-east-1:{server.account_id}:repository/{repo}"
    assert created["repositoryUri"] == f"127.0.0.1:{server.port}/{repo}"
    assert created["registryId"] == server.account_id and created["imageTagMutability"] == "MUTABLE"
    with pytest.raises(ClientError) as err:
        ecr.create_repository(repositoryName=repo)
    assert code(err) == "RepositoryAlreadyExistsException"
    described = ecr.describe_repositories(repositoryNames=[repo])["repositories"]
    assert [r["repositoryName"] for r in described] == [repo]
    listed = [r["repositoryName"] for page in ecr.get_paginator("describe_repositories").paginate(
        PaginationConfig={"PageSize": 1}) for r in page["repositories"]]
    assert repo in listed
    assert ecr.list_tags_for_resource(resourceArn=created["repositoryArn"])["tags"] == [{"Key": "team", "Value": "a"}]
    ecr.tag_resource(resourceArn=created["repositoryArn"], tags=[{"Key": "env", "Value": "dev"}])
    ecr.untag_resource(resourceArn=created["repositoryArn"], tagKeys=["team"])
    assert ecr.list_tags_for_resource(resourceArn=created["repositoryArn"])["tags"] == [{"Key": "env", "Value": "dev"}]
    ecr.delete_repository(repositoryName=repo)
    with pytest.raises(ClientError) as err:
        ecr.describe_repositories(repositoryNames=[repo])
    assert code(err) == "RepositoryNotFoundException"
    assert f"The repository with name '{repo}' does not exist" in err.value.response["Error"]["Message"]


def test_images_put_get_describe_delete(server: MinicloudServer) -> None:
    ecr = server.client("ecr")
    repo = name()
    ecr.create_repository(repositoryName=repo)
    body = manifest(server, repo, b"layer one")
    image = ecr.put_image(repositoryName=repo, imageManifest=body, imageTag="v1")["image"]
    digest = image["imageId"]["imageDigest"]
    assert digest == "sha256:" + hashlib.sha256(body.encode()).hexdigest()
    with pytest.raises(ClientError) as err:
        ecr.put_image(repositoryName=repo, imageManifest=body, imageTag="v1")
    assert code(err) == "ImageAlreadyExistsException"
    ecr.put_image(repositoryName=repo, imageManifest=body, imageTag="v2")
    # the same image on the OCI API
    status, headers, pulled = http(server, "GET", f"/v2/{repo}/manifests/v2")
    assert status == 200 and pulled == body.encode() and headers["content-type"] == OCI_MANIFEST
    got = ecr.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": "v1"}, {"imageTag": "nope"}])
    assert got["images"][0]["imageManifest"] == body and got["images"][0]["imageManifestMediaType"] == OCI_MANIFEST
    assert got["failures"][0]["failureCode"] == "ImageNotFound"
    detail = ecr.describe_images(repositoryName=repo)["imageDetails"][0]
    assert sorted(detail["imageTags"]) == ["v1", "v2"] and detail["imageSizeInBytes"] > 0
    assert detail["artifactMediaType"] == "application/vnd.oci.image.config.v1+json" and detail["imagePushedAt"]
    assert len(ecr.list_images(repositoryName=repo)["imageIds"]) == 2
    with pytest.raises(ClientError) as err:
        ecr.describe_images(repositoryName=repo, imageIds=[{"imageTag": "missing"}])
    assert code(err) == "ImageNotFoundException"
    with pytest.raises(ClientError) as err:
        ecr.put_image(repositoryName=repo, imageManifest=json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "x", "digest": "sha256:" + "0" * 64, "size": 1}, "layers": []}))
    assert code(err) == "LayersNotFoundException"
    deleted = ecr.batch_delete_image(repositoryName=repo, imageIds=[{"imageTag": "v1"}])
    assert deleted["imageIds"] == [{"imageDigest": digest, "imageTag": "v1"}]
    assert ecr.describe_images(repositoryName=repo)["imageDetails"][0]["imageTags"] == ["v2"]
    ecr.batch_delete_image(repositoryName=repo, imageIds=[{"imageTag": "v2"}])  # the last tag: image gone
    assert ecr.list_images(repositoryName=repo)["imageIds"] == []
    ecr.put_image(repositoryName=repo, imageManifest=body, imageTag="v3")
    with pytest.raises(ClientError) as err:
        ecr.delete_repository(repositoryName=repo)
    assert code(err) == "RepositoryNotEmptyException"
    ecr.delete_repository(repositoryName=repo, force=True)
    assert http(server, "GET", f"/v2/{repo}/manifests/v3")[0] == 404


def test_tag_immutability_applies_to_docker_pushes_too(server: MinicloudServer) -> None:
    ecr = server.client("ecr")
    repo = name()
    ecr.create_repository(repositoryName=repo, imageTagMutability="IMMUTABLE")
    ecr.put_image(repositoryName=repo, imageManifest=manifest(server, repo, b"a"), imageTag="v1")
    with pytest.raises(ClientError) as err:
        ecr.put_image(repositoryName=repo, imageManifest=manifest(server, repo, b"b"), imageTag="v1")
    assert code(err) == "ImageTagAlreadyExistsException"
    status, _, body = http(server, "PUT", f"/v2/{repo}/manifests/v1", manifest(server, repo, b"c").encode(),
                           {"content-type": OCI_MANIFEST})
    assert status == 400 and json.loads(body)["errors"][0]["code"] == "TAG_INVALID"
    ecr.put_image_tag_mutability(repositoryName=repo, imageTagMutability="MUTABLE")
    status, _, _ = http(server, "PUT", f"/v2/{repo}/manifests/v1", manifest(server, repo, b"c").encode(),
                        {"content-type": OCI_MANIFEST})
    assert status == 201


def test_policies_and_lifecycle_with_the_aws_cli(server: MinicloudServer) -> None:
    repo = name()
    server.aws_json("ecr", "create-repository", "--repository-name", repo)
    failed = server.aws("ecr", "get-repository-policy", "--repository-name", repo, check=False)
    assert failed.returncode != 0 and "RepositoryPolicyNotFoundException" in failed.stderr
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "pull", "Effect": "Allow", "Principal": "*", "Action": ["ecr:BatchGetImage"]}]})
    server.aws_json("ecr", "set-repository-policy", "--repository-name", repo, "--policy-text", policy)
    got = server.aws_json("ecr", "get-repository-policy", "--repository-name", repo)
    assert json.loads(got["policyText"]) == json.loads(policy)
    bad = server.aws("ecr", "set-repository-policy", "--repository-name", repo, "--policy-text", "{",
                     check=False)
    assert "InvalidParameterException" in bad.stderr
    server.aws_json("ecr", "delete-repository-policy", "--repository-name", repo)
    rules = json.dumps({"rules": [{"rulePriority": 1, "selection": {
        "tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 1},
        "action": {"type": "expire"}}]})
    server.aws_json("ecr", "put-lifecycle-policy", "--repository-name", repo, "--lifecycle-policy-text", rules)
    got = server.aws_json("ecr", "get-lifecycle-policy", "--repository-name", repo)
    assert json.loads(got["lifecyclePolicyText"]) == json.loads(rules)
    server.aws_json("ecr", "delete-lifecycle-policy", "--repository-name", repo)
    server.aws_json("ecr", "delete-repository", "--repository-name", repo)


def test_get_login_password_works_as_basic_and_token_credentials(server: MinicloudServer) -> None:
    password = server.aws("ecr", "get-login-password").stdout.strip()
    data: dict[str, Any] = server.client("ecr").get_authorization_token()["authorizationData"][0]
    assert base64.b64decode(data["authorizationToken"]).decode().startswith("AWS:")
    assert data["proxyEndpoint"] == f"http://127.0.0.1:{server.port}"
    auth = base64.b64encode(f"AWS:{password}".encode()).decode()
    req = urllib.request.Request(f"{server.endpoint}/_minicloud/registry/token?service=minicloud",
                                 headers={"authorization": f"Basic {auth}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert json.loads(r.read())["token"]
    wrong = base64.b64encode(f"AWS:{password[:-3]}abc".encode()).decode()
    req = urllib.request.Request(f"{server.endpoint}/v2/", headers={"authorization": f"Basic {wrong}"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code == 401


def test_other_accounts_see_nothing_without_a_policy(server: MinicloudServer) -> None:
    repo = name()
    server.client("ecr").create_repository(repositoryName=repo)
    org = server.client("organizations")
    status = org.create_account(Email=f"{uuid.uuid4().hex[:8]}@example.com", AccountName="other")
    account_id = status["CreateAccountStatus"]["AccountId"]
    iam = server.client("iam")
    user = f"cross-{uuid.uuid4().hex[:6]}"
    iam.create_user(UserName=user)
    iam.attach_user_policy(UserName=user, PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    key = iam.create_access_key(UserName=user)["AccessKey"]
    admin = Keys(key["AccessKeyId"], key["SecretAccessKey"])
    creds = server.client("sts", keys=admin).assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole", RoleSessionName="xacct")["Credentials"]
    other = Keys(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    with pytest.raises(ClientError) as err:
        server.client("ecr", keys=other).describe_repositories(registryId=server.account_id, repositoryNames=[repo])
    assert code(err) == "AccessDeniedException"
    assert repo not in [r["repositoryName"] for r in
                        server.client("ecr", keys=other).describe_repositories()["repositories"]]


def test_layer_upload_api_feeds_the_registry(server: MinicloudServer) -> None:
    ecr = server.client("ecr")
    repo = name()
    ecr.create_repository(repositoryName=repo)
    data = b"an ECR layer " * 5000
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    upload = ecr.initiate_layer_upload(repositoryName=repo)
    assert upload["partSize"] > 0
    first = ecr.upload_layer_part(repositoryName=repo, uploadId=upload["uploadId"], partFirstByte=0,
                                  partLastByte=29_999, layerPartBlob=data[:30_000])
    assert first["lastByteReceived"] == 29_999
    with pytest.raises(ClientError) as err:
        ecr.upload_layer_part(repositoryName=repo, uploadId=upload["uploadId"], partFirstByte=10,
                              partLastByte=19, layerPartBlob=data[10:20])
    assert code(err) == "InvalidLayerPartException"
    ecr.upload_layer_part(repositoryName=repo, uploadId=upload["uploadId"], partFirstByte=30_000,
                          partLastByte=len(data) - 1, layerPartBlob=data[30_000:])
    done = ecr.complete_layer_upload(repositoryName=repo, uploadId=upload["uploadId"], layerDigests=[digest])
    assert done["layerDigest"] == digest
    layers = ecr.batch_check_layer_availability(repositoryName=repo, layerDigests=[digest, "sha256:" + "0" * 64])
    assert layers["layers"][0]["layerAvailability"] == "AVAILABLE" and layers["layers"][0]["layerSize"] == len(data)
    assert layers["failures"][0]["failureCode"] == "MissingLayerDigest"
    url = ecr.get_download_url_for_layer(repositoryName=repo, layerDigest=digest)["downloadUrl"]
    status, _, body = http(server, "GET", url.split(str(server.port), 1)[1])
    assert status == 200 and body == data
    with pytest.raises(ClientError) as err:
        ecr.upload_layer_part(repositoryName=repo, uploadId=upload["uploadId"], partFirstByte=0, partLastByte=0,
                              layerPartBlob=b"x")
    assert code(err) == "UploadNotFoundException"
