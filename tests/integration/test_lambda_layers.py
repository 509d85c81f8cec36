"""Lambda layers with boto3 and the AWS CLI against a real minicloud: the layer API (versions,
filters, pagination, downloads, policies), functions using layers (merged in order into a read-only
/opt, importable from Python, on PATH, NODE_PATH, a custom runtime's /opt/bootstrap), another
account's layer as its policy allows, and AWS's errors."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import urllib.request
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration import test_lambda as shared
from tests.integration.test_ec2_security import other_account
from tests.integration.test_lambda import TRUST, Lambda, zipped
from tests.integration.test_lambda_runtimes import BOOTSTRAP
from tests.support.polling import eventually
from tests.support.server import Keys

pytestmark = shared.pytestmark
lambda_server = shared.lambda_server  # the session's Lambda server, shared with test_lambda.py
lam = shared.lam

SITE = "python/lib/python3.11/site-packages"
IMPORTER = """
import os, subprocess, sys
import layermod
def handler(event, context):
    return {"who": layermod.WHO, "file": layermod.__file__, "path": sys.path[:3],
            "opt_writable": os.access("/opt", os.W_OK) and os.statvfs("/opt").f_flag & 1 == 0,
            "tool": subprocess.run(["tool"], capture_output=True, text=True).stdout.strip(),
            "opt": sorted(os.listdir("/opt"))}
"""


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


def message(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Message"])


def publish(client: Any, name: str, files: dict[str, str], modes: dict[str, int] | None = None,
            **extra: Any) -> dict[str, Any]:
    return dict(client.publish_layer_version(LayerName=name, Content={"ZipFile": zipped(files, modes)}, **extra))


def test_a_python_function_imports_a_module_only_its_layer_has(lam: Lambda) -> None:
    layer = publish(lam.client, unique("libs"), {f"{SITE}/layermod.py": "WHO = 'from the layer'\n",
                                                 "bin/tool": "#!/bin/sh\necho tool from the layer\n"},
                    modes={"bin/tool": 0o755}, CompatibleRuntimes=["python3.11"])
    name = lam.create(IMPORTER, Layers=[layer["LayerVersionArn"]])
    response, result = lam.invoke(name)
    assert "FunctionError" not in response, result
    assert result["who"] == "from the layer" and result["file"] == f"/opt/{SITE}/layermod.py"
    assert result["path"] == ["/var/task", f"/opt/{SITE}", "/opt/python"]  # as AWS's python3.11
    assert result["tool"] == "tool from the layer"  # /opt/bin is on PATH
    assert not result["opt_writable"] and result["opt"] == ["bin", "python"]
    configuration = lam.client.get_function(FunctionName=name)["Configuration"]
    assert configuration["Layers"] == [{"Arn": layer["LayerVersionArn"], "CodeSize": layer["Content"]["CodeSize"]}]
    without = lam.create(IMPORTER)  # the same code without the layer cannot import it
    _, error = lam.invoke(without)
    assert error["errorType"] == "Runtime.ImportModuleError"
    assert error["errorMessage"] == "Unable to import module 'app': No module named 'layermod'"


def test_a_later_layer_overrides_an_earlier_ones_files(lam: Lambda) -> None:
    first = publish(lam.client, unique("first"), {"python/shared.py": "V = 'first'\n",
                                                  "python/only_first.py": "X = 1\n", "data/conf": "first"})
    second = publish(lam.client, unique("second"), {"python/shared.py": "V = 'second'\n", "data/conf": "second"})
    handler = ("import shared, only_first\ndef handler(e, c):\n"
               "    return [shared.V, only_first.X, open('/opt/data/conf').read()]\n")
    name = lam.create(handler, Layers=[first["LayerVersionArn"], second["LayerVersionArn"]])
    assert lam.invoke(name)[1] == ["second", 1, "second"]
    lam.client.update_function_configuration(FunctionName=name,
                                             Layers=[second["LayerVersionArn"], first["LayerVersionArn"]])
    lam.client.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1})
    assert lam.invoke(name)[1] == ["first", 1, "first"]
    lam.client.update_function_configuration(FunctionName=name, Layers=[])
    lam.client.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1})
    assert "Layers" not in lam.client.get_function_configuration(FunctionName=name)
    assert lam.invoke(name)[1]["errorType"] == "Runtime.ImportModuleError"


def test_published_versions_keep_their_layers_and_deleted_layer_versions_keep_working(lam: Lambda) -> None:
    layer_name = unique("kept")
    v1 = publish(lam.client, layer_name, {"python/layermod.py": "WHO = 'v1'\n"})
    v2 = publish(lam.client, layer_name, {"python/layermod.py": "WHO = 'v2'\n"})
    assert (v1["Version"], v2["Version"]) == (1, 2)
    name = lam.create("import layermod\ndef handler(e, c):\n    return layermod.WHO\n", Layers=[v1["LayerVersionArn"]])
    published = lam.client.publish_version(FunctionName=name)
    assert published["Layers"][0]["Arn"] == v1["LayerVersionArn"]
    lam.client.update_function_configuration(FunctionName=name, Layers=[v2["LayerVersionArn"]])
    lam.client.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1})
    assert lam.invoke(name)[1] == "v2"
    lam.client.delete_layer_version(LayerName=layer_name, VersionNumber=1)
    with pytest.raises(ClientError) as gone:
        lam.client.get_layer_version(LayerName=layer_name, VersionNumber=1)
    assert code(gone) == "ResourceNotFoundException"
    # version 1 of the function still has (and runs with) the deleted layer version, in a new environment
    assert lam.invoke(name, Qualifier=published["Version"])[1] == "v1"
    assert lam.client.get_function_configuration(FunctionName=name, Qualifier="1")["Layers"][0]["Arn"] == \
        v1["LayerVersionArn"]
    zips = lam.server.data_dir / "lambda" / "layers" / "zips"
    kept = zips / f"{base64.b64decode(v1['Content']['CodeSha256']).hex()}.zip"
    assert kept.exists()  # until no function version uses it
    with pytest.raises(ClientError) as refused:  # but no function can take it any more
        lam.create("def handler(e, c):\n    return 1\n", Layers=[v1["LayerVersionArn"]])
    assert code(refused) == "InvalidParameterValueException"
    assert message(refused) == f"Layer version {v1['LayerVersionArn']} does not exist."
    v3 = publish(lam.client, layer_name, {"python/layermod.py": "WHO = 'v3'\n"})
    assert v3["Version"] == 3  # numbers are never reused
    lam.client.delete_function(FunctionName=name)
    eventually(lambda: not kept.exists() or None)  # (removed once no one took it back meanwhile)
    assert (zips / f"{base64.b64decode(v2['Content']['CodeSha256']).hex()}.zip").exists()  # v2 is still published


def test_layer_versions_fields_filters_pagination_and_downloads(lam: Lambda) -> None:
    name = unique("api")
    package = zipped({"python/a.py": "A = 1\n"})
    first = dict(lam.client.publish_layer_version(
        LayerName=name, Content={"ZipFile": package}, Description="first", LicenseInfo="MIT",
        CompatibleRuntimes=["python3.11", "python3.12"], CompatibleArchitectures=["x86_64"]))
    assert first["ResponseMetadata"]["HTTPStatusCode"] == 201
    account = lam.server.account_id
    assert first["LayerArn"] == f"arn:aws:lambda:us-east-1:{account}:layer:{name}"
    assert first["LayerVersionArn"] == f"{first['LayerArn']}:1" and first["Version"] == 1
    assert first["Description"] == "first" and first["LicenseInfo"] == "MIT"
    assert first["CompatibleRuntimes"] == ["python3.11", "python3.12"]
    assert first["CompatibleArchitectures"] == ["x86_64"]
    assert first["Content"]["CodeSize"] == len(package)
    assert first["Content"]["CodeSha256"] == base64.b64encode(hashlib.sha256(package).digest()).decode()
    with urllib.request.urlopen(first["Content"]["Location"], timeout=30) as downloaded:
        assert downloaded.read() == package
    publish(lam.client, name, {"n.js": "1"}, CompatibleRuntimes=["nodejs18.x"], CompatibleArchitectures=["arm64"])
    publish(lam.client, name, {"p.py": "1"}, CompatibleRuntimes=["python3.11"])
    got = lam.client.get_layer_version(LayerName=name, VersionNumber=1)
    assert {k: got[k] for k in ("LayerVersionArn", "Description", "CreatedDate", "Version")} == \
        {k: first[k] for k in ("LayerVersionArn", "Description", "CreatedDate", "Version")}
    by_arn = lam.client.get_layer_version_by_arn(Arn=f"{first['LayerArn']}:3")
    assert by_arn["Version"] == 3 and by_arn["CompatibleRuntimes"] == ["python3.11"]
    by_name_arn = lam.client.get_layer_version(LayerName=first["LayerArn"], VersionNumber=2)
    assert by_name_arn["CompatibleRuntimes"] == ["nodejs18.x"]

    versions = lam.client.list_layer_versions(LayerName=name)["LayerVersions"]
    assert [v["Version"] for v in versions] == [3, 2, 1]  # newest first
    pages = lam.client.get_paginator("list_layer_versions").paginate(LayerName=name,
                                                                     PaginationConfig={"PageSize": 1})
    assert [[v["Version"] for v in p["LayerVersions"]] for p in pages] == [[3], [2], [1]]
    assert [v["Version"] for v in lam.client.list_layer_versions(
        LayerName=name, CompatibleRuntime="python3.11")["LayerVersions"]] == [3, 1]
    assert [v["Version"] for v in lam.client.list_layer_versions(
        LayerName=name, CompatibleArchitecture="arm64")["LayerVersions"]] == [2]
    assert lam.client.list_layer_versions(LayerName=unique("none"))["LayerVersions"] == []

    layers = {layer["LayerName"]: layer for layer in lam.client.list_layers()["Layers"]}
    assert layers[name]["LayerArn"] == first["LayerArn"]
    assert layers[name]["LatestMatchingVersion"]["Version"] == 3
    node = {layer["LayerName"]: layer for layer in lam.client.list_layers(CompatibleRuntime="nodejs18.x")["Layers"]}
    assert node[name]["LatestMatchingVersion"]["Version"] == 2
    listed = [layer["LayerName"] for page in lam.client.get_paginator("list_layers").paginate(
        PaginationConfig={"PageSize": 1}) for layer in page["Layers"]]
    assert name in listed and len(listed) == len(set(listed))

    lam.client.delete_layer_version(LayerName=name, VersionNumber=3)
    lam.client.delete_layer_version(LayerName=name, VersionNumber=3)  # idempotent, as AWS
    layers = {layer["LayerName"]: layer for layer in lam.client.list_layers()["Layers"]}
    assert layers[name]["LatestMatchingVersion"]["Version"] == 2
    with pytest.raises(ClientError) as missing:
        lam.client.get_layer_version_by_arn(Arn=f"{first['LayerArn']}:3")
    assert code(missing) == "ResourceNotFoundException"
    assert message(missing) == "The resource you requested does not exist."
    with pytest.raises(ClientError) as invalid:
        lam.client.get_layer_version_by_arn(Arn=first["LayerArn"])
    assert code(invalid) == "ValidationException"


def test_layer_content_from_s3(lam: Lambda) -> None:
    s3 = lam.server.client("s3")
    bucket = unique("layer-src")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="layer.zip", Body=zipped({"python/layermod.py": "WHO = 's3 v1'\n"}))
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    put = s3.put_object(Bucket=bucket, Key="layer.zip", Body=zipped({"python/layermod.py": "WHO = 's3 v2'\n"}))
    s3.put_object(Bucket=bucket, Key="layer.zip", Body=zipped({"python/layermod.py": "WHO = 's3 v3'\n"}))
    layer = lam.client.publish_layer_version(LayerName=unique("s3"), Content={
        "S3Bucket": bucket, "S3Key": "layer.zip", "S3ObjectVersion": put["VersionId"]})
    name = lam.create("import layermod\ndef handler(e, c):\n    return layermod.WHO\n",
                      Layers=[layer["LayerVersionArn"]])
    assert lam.invoke(name)[1] == "s3 v2"
    with pytest.raises(ClientError) as missing:
        lam.client.publish_layer_version(LayerName=unique("s3"), Content={"S3Bucket": bucket, "S3Key": "nope.zip"})
    assert code(missing) == "InvalidParameterValueException" and "NoSuchKey" in message(missing)


def test_aws_cli_publishes_lists_uses_and_deletes_layers(lam: Lambda, tmp_path: Path) -> None:
    server = lam.server
    layer_name, function = unique("cli"), unique("cli-fn")
    (tmp_path / "layer.zip").write_bytes(zipped({f"{SITE}/clilib.py": "def greet(n):\n    return 'hi ' + n\n"}))
    (tmp_path / "fn.zip").write_bytes(zipped({"app.py": "import clilib\ndef handler(e, c):\n"
                                                        "    return clilib.greet(e['n'])\n"}))
    published = server.aws_json("lambda", "publish-layer-version", "--layer-name", layer_name, "--description",
                                "from the CLI", "--license-info", "Apache-2.0", "--zip-file",
                                f"fileb://{tmp_path / 'layer.zip'}", "--compatible-runtimes", "python3.11",
                                "--compatible-architectures", "x86_64")
    assert published["Version"] == 1 and published["LayerVersionArn"].endswith(f":layer:{layer_name}:1")
    arn = published["LayerVersionArn"]
    got = server.aws_json("lambda", "get-layer-version", "--layer-name", layer_name, "--version-number", "1")
    assert got["Description"] == "from the CLI" and got["LicenseInfo"] == "Apache-2.0"
    assert server.aws_json("lambda", "get-layer-version-by-arn", "--arn", arn)["Version"] == 1
    listed = server.aws_json("lambda", "list-layer-versions", "--layer-name", layer_name)["LayerVersions"]
    assert [v["LayerVersionArn"] for v in listed] == [arn]
    layers = server.aws_json("lambda", "list-layers", "--compatible-runtime", "python3.11")["Layers"]
    assert layer_name in [layer["LayerName"] for layer in layers]
    server.aws("lambda", "create-function", "--function-name", function, "--runtime", "python3.11", "--role",
               lam.role, "--handler", "app.handler", "--zip-file", f"fileb://{tmp_path / 'fn.zip'}",
               "--layers", arn)
    server.aws("lambda", "wait", "function-active-v2", "--function-name", function)
    out = tmp_path / "out.json"
    server.aws("lambda", "invoke", "--function-name", function, "--payload", '{"n": "cli"}', str(out))
    assert json.loads(out.read_text()) == "hi cli"
    config = server.aws_json("lambda", "get-function-configuration", "--function-name", function)
    assert config["Layers"] == [{"Arn": arn, "CodeSize": published["Content"]["CodeSize"]}]
    statement = server.aws_json("lambda", "add-layer-version-permission", "--layer-name", layer_name,
                                "--version-number", "1", "--statement-id", "everyone", "--action",
                                "lambda:GetLayerVersion", "--principal", "*")
    assert json.loads(statement["Statement"])["Principal"] == "*"
    policy = server.aws_json("lambda", "get-layer-version-policy", "--layer-name", layer_name, "--version-number", "1")
    assert [s["Sid"] for s in json.loads(policy["Policy"])["Statement"]] == ["everyone"]
    server.aws("lambda", "remove-layer-version-permission", "--layer-name", layer_name, "--version-number", "1",
               "--statement-id", "everyone")
    server.aws("lambda", "delete-layer-version", "--layer-name", layer_name, "--version-number", "1")
    failed = server.aws("lambda", "get-layer-version", "--layer-name", layer_name, "--version-number", "1",
                        check=False)
    assert failed.returncode != 0 and "ResourceNotFoundException" in failed.stderr
    server.aws("lambda", "update-function-configuration", "--function-name", function, "--description", "new env")
    server.aws("lambda", "wait", "function-updated-v2", "--function-name", function)
    server.aws("lambda", "invoke", "--function-name", function, "--payload", '{"n": "again"}', str(out))
    assert json.loads(out.read_text()) == "hi again"  # the deleted version still serves the function


def test_errors_for_functions_layers(lam: Lambda) -> None:
    client = lam.client
    layers = [publish(client, unique(f"many{i}"), {f"f{i}": "x"})["LayerVersionArn"] for i in range(6)]
    body = "def handler(e, c):\n    return 1\n"
    cases: list[tuple[list[str], str, str]] = [
        (layers, "InvalidParameterValueException", "Cannot reference more than 5 layers."),
        ([layers[0].rsplit(":", 1)[0] + ":99"], "InvalidParameterValueException",
         f"Layer version {layers[0].rsplit(':', 1)[0]}:99 does not exist."),
        ([layers[0].replace("us-east-1", "eu-west-1")], "InvalidParameterValueException",
         "Layers are not in the same region as the function. Layers are expected to be in region us-east-1."),
        ([layers[0].rsplit(":", 1)[0]], "ValidationException", "at 'layers"),
    ]
    twice = publish(client, layers[0].split(":")[6], {"g": "y"})["LayerVersionArn"]
    cases.append(([layers[0], twice], "InvalidParameterValueException",
                  "Two different versions of the same layer are not allowed to be referenced in the same function. "
                  f"{layers[0]} and {twice} are versions of the same layer."))
    for arns, error_code, text in cases:
        with pytest.raises(ClientError) as caught:
            client.create_function(FunctionName=unique("bad"), Runtime="python3.11", Role=lam.role,
                                   Handler="app.handler", Code={"ZipFile": zipped({"app.py": body})}, Layers=arns)
        assert code(caught) == error_code, arns
        assert text in message(caught), message(caught)
    with pytest.raises(ClientError) as caught:
        client.create_function(FunctionName=unique("image"), PackageType="Image", Role=lam.role, Layers=layers[:1],
                               Code={"ImageUri": f"{lam.server.account_id}.dkr.ecr.us-east-1.amazonaws.com/x:1"})
    assert message(caught) == ("Please don't provide Handler or Runtime or Layer when the intended function "
                               "PackageType is Image.")
    name = lam.create(body, Layers=layers[:5])  # five is allowed
    with pytest.raises(ClientError) as caught:
        client.update_function_configuration(FunctionName=name, Layers=layers)
    assert message(caught) == "Cannot reference more than 5 layers."
    with pytest.raises(ClientError) as caught:
        client.publish_layer_version(LayerName=unique("bad"), Content={"ZipFile": b"not a zip"})
    assert code(caught) == "InvalidParameterValueException"
    with pytest.raises(ClientError) as caught:
        client.publish_layer_version(LayerName=unique("bad"), Content={"ZipFile": zipped({"a": "b"})},
                                     CompatibleRuntimes=["cobol85"])
    assert code(caught) == "ValidationException"


def test_function_and_layers_over_250_mb_unzipped_are_refused(lam: Lambda) -> None:
    limit = 262144000
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive, archive.open("zeros", "w") as entry:
        block = bytes(1 << 20)  # 250 MB unzipped, ~250 KB zipped
        for _ in range(250):
            entry.write(block)
    big = lam.client.publish_layer_version(LayerName=unique("big"), Content={"ZipFile": buffer.getvalue()})
    package = zipped({"app.py": "def handler(e, c):\n    return 1\n"})
    unzipped = len("def handler(e, c):\n    return 1\n")
    with pytest.raises(ClientError) as caught:
        lam.client.create_function(FunctionName=unique("huge"), Runtime="python3.11", Role=lam.role,
                                   Handler="app.handler", Code={"ZipFile": package}, Layers=[big["LayerVersionArn"]])
    assert code(caught) == "InvalidParameterValueException"
    assert message(caught) == ("Function code combined with layers exceeds the maximum allowed size of "
                               f"{limit} bytes. The actual size is {250 * (1 << 20) + unzipped} bytes.")
    name = lam.create(package)
    with pytest.raises(ClientError) as caught:
        lam.client.update_function_configuration(FunctionName=name, Layers=[big["LayerVersionArn"]])
    assert message(caught).startswith("Function code combined with layers exceeds")


def test_another_account_uses_a_layer_only_as_its_policy_allows(lam: Lambda) -> None:
    owner = lam.client
    layer_name = unique("shared")
    layer = publish(owner, layer_name, {"python/layermod.py": "WHO = 'shared layer'\n"})
    arn = layer["LayerVersionArn"]
    other_id, other_keys = other_account(lam.server)
    other = lam.server.client("lambda", keys=other_keys, read_timeout=120)
    iam = lam.server.client("iam", keys=other_keys)
    role = iam.create_role(RoleName=unique("exec"), AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    handler = zipped({"app.py": "import layermod\ndef handler(e, c):\n    return layermod.WHO\n"})

    def create() -> str:
        name = unique("borrower")
        other.create_function(FunctionName=name, Runtime="python3.11", Role=role, Handler="app.handler",
                              Code={"ZipFile": handler}, Layers=[arn])
        return name

    for attempt in (create, lambda: other.get_layer_version_by_arn(Arn=arn)):
        with pytest.raises(ClientError) as denied:
            attempt()
        assert code(denied) == "AccessDeniedException"
        assert f"lambda:GetLayerVersion on resource: {arn}" in message(denied)
    with pytest.raises(ClientError) as denied:  # only the owner may change the policy
        other.add_layer_version_permission(LayerName=layer["LayerArn"], VersionNumber=1, StatementId="me",
                                           Action="lambda:GetLayerVersion", Principal=other_id)
    assert code(denied) == "AccessDeniedException"

    granted = owner.add_layer_version_permission(LayerName=layer_name, VersionNumber=1, StatementId="borrower",
                                                 Action="lambda:GetLayerVersion", Principal=other_id)
    assert json.loads(granted["Statement"]) == {
        "Sid": "borrower", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{other_id}:root"},
        "Action": "lambda:GetLayerVersion", "Resource": arn}
    with pytest.raises(ClientError) as conflict:
        owner.add_layer_version_permission(LayerName=layer_name, VersionNumber=1, StatementId="borrower",
                                           Action="lambda:GetLayerVersion", Principal=other_id)
    assert code(conflict) == "ResourceConflictException"
    with pytest.raises(ClientError) as stale:
        owner.add_layer_version_permission(LayerName=layer_name, VersionNumber=1, StatementId="x",
                                           Action="lambda:GetLayerVersion", Principal="*", RevisionId="stale")
    assert code(stale) == "PreconditionFailedException"
    policy = owner.get_layer_version_policy(LayerName=layer_name, VersionNumber=1)
    assert policy["RevisionId"] == granted["RevisionId"]
    assert other.get_layer_version_by_arn(Arn=arn)["Version"] == 1
    name = create()
    other.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 300})
    response = other.invoke(FunctionName=name, Payload=b"{}")
    assert json.loads(response["Payload"].read()) == "shared layer"

    owner.remove_layer_version_permission(LayerName=layer_name, VersionNumber=1, StatementId="borrower")
    with pytest.raises(ClientError) as denied:
        create()
    assert code(denied) == "AccessDeniedException"
    with pytest.raises(ClientError) as no_policy:
        owner.get_layer_version_policy(LayerName=layer_name, VersionNumber=1)
    assert code(no_policy) == "ResourceNotFoundException"
    assert message(no_policy) == "No policy is associated with the given resource."
    with pytest.raises(ClientError) as no_statement:
        owner.remove_layer_version_permission(LayerName=layer_name, VersionNumber=1, StatementId="borrower")
    assert code(no_statement) == "ResourceNotFoundException"
    owner.add_layer_version_permission(LayerName=layer_name, VersionNumber=1, StatementId="all",
                                       Action="lambda:GetLayerVersion", Principal="*")
    assert other.get_layer_version(LayerName=layer["LayerArn"], VersionNumber=1)["Version"] == 1


def _user(lam: Lambda, statements: list[dict[str, Any]]) -> tuple[str, Keys]:
    iam = lam.server.client("iam")
    user = unique("layer-user")
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": statements}))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    return user, Keys(key["AccessKeyId"], key["SecretAccessKey"])


def test_iam_actions_and_resources_for_layers(lam: Lambda) -> None:
    account = lam.server.account_id
    allowed, forbidden = unique("mine"), unique("theirs")
    theirs = publish(lam.client, forbidden, {"python/x.py": "X = 1\n"})["LayerVersionArn"]
    user_name, keys = _user(lam, [
        {"Effect": "Allow", "Action": "lambda:PublishLayerVersion",
         "Resource": f"arn:aws:lambda:us-east-1:{account}:layer:{allowed}"},
        {"Effect": "Allow", "Action": ["lambda:GetLayerVersion", "lambda:DeleteLayerVersion"],
         "Resource": f"arn:aws:lambda:us-east-1:{account}:layer:{allowed}:*"},
        {"Effect": "Allow", "Action": ["lambda:CreateFunction", "lambda:GetFunction", "iam:PassRole"],
         "Resource": "*"},
    ])
    user = lam.server.client("lambda", keys=keys)
    mine = publish(user, allowed, {"python/y.py": "Y = 1\n"})["LayerVersionArn"]
    with pytest.raises(ClientError) as denied:
        publish(user, forbidden, {"python/y.py": "Y = 1\n"})
    assert code(denied) == "AccessDeniedException" and "lambda:PublishLayerVersion" in message(denied)
    assert user.get_layer_version_by_arn(Arn=mine)["Version"] == 1
    with pytest.raises(ClientError) as denied:
        user.get_layer_version_by_arn(Arn=theirs)
    assert code(denied) == "AccessDeniedException"
    with pytest.raises(ClientError) as denied:  # listing is its own action
        user.list_layers()
    assert code(denied) == "AccessDeniedException"
    package = {"ZipFile": zipped({"app.py": "def handler(e, c):\n    return 1\n"})}
    with pytest.raises(ClientError) as denied:  # attaching a layer needs lambda:GetLayerVersion on it
        user.create_function(FunctionName=unique("f"), Runtime="python3.11", Role=lam.role, Handler="app.handler",
                             Code=package, Layers=[theirs])
    assert code(denied) == "AccessDeniedException" and f"lambda:GetLayerVersion on resource: {theirs}" in \
        message(denied)
    created = user.create_function(FunctionName=unique("f"), Runtime="python3.11", Role=lam.role,
                                   Handler="app.handler", Code=package, Layers=[mine])
    assert created["Layers"][0]["Arn"] == mine
    # the condition key lambda:Layer: the layer versions a CreateFunction names
    newer = publish(user, allowed, {"python/y.py": "Y = 2\n"})["LayerVersionArn"]
    lam.server.client("iam").put_user_policy(UserName=user_name, PolicyName="no-newer", PolicyDocument=
                                            json.dumps({"Version": "2012-10-17", "Statement": [{
                                                "Effect": "Deny", "Action": "lambda:CreateFunction", "Resource": "*",
                                                "Condition": {"ForAnyValue:StringEquals": {"lambda:Layer": newer}}}]}))
    with pytest.raises(ClientError) as denied:
        user.create_function(FunctionName=unique("f"), Runtime="python3.11", Role=lam.role, Handler="app.handler",
                             Code=package, Layers=[mine, newer])
    assert code(denied) == "AccessDeniedException" and "lambda:CreateFunction" in message(denied)
    with pytest.raises(ClientError) as denied:
        user.delete_layer_version(LayerName=forbidden, VersionNumber=1)
    assert code(denied) == "AccessDeniedException"
    user.delete_layer_version(LayerName=allowed, VersionNumber=1)


def test_node_and_custom_runtime_layers(lam: Lambda) -> None:
    node_layer = publish(lam.client, unique("node"), {
        "nodejs/node_modules/greeter/index.js": "exports.greet = (n) => 'node layer greets ' + n;\n",
        "nodejs/node18/node_modules/versioned/index.js": "exports.v = 18;\n"})
    name = lam.create("const g = require('greeter'); const v = require('versioned');\n"
                      "exports.handler = async (e) => [g.greet(e.n), v.v, process.env.NODE_PATH];\n",
                      runtime="nodejs18.x", handler="index.handler", filename="index.js",
                      Layers=[node_layer["LayerVersionArn"]])
    response, result = lam.invoke(name, {"n": "x"})
    assert "FunctionError" not in response, result
    assert result[:2] == ["node layer greets x", 18]
    assert result[2].startswith("/opt/nodejs/node18/node_modules:/opt/nodejs/node_modules:")
    runtime_layer = publish(lam.client, unique("runtime"), {"bootstrap": BOOTSTRAP}, modes={"bootstrap": 0o755})
    name = lam.create(zipped({"function.sh": "# the handler a layer's runtime runs\n"}), runtime="provided.al2023",
                      handler="function.handler", Layers=[runtime_layer["LayerVersionArn"]])
    response, result = lam.invoke(name, {"i": 1})
    assert "FunctionError" not in response, result
    assert result == {"echo": {"i": 1}, "shell": "bash 5", "handler": "function.handler"}


def test_another_accounts_s3_zip_is_read_only_as_its_bucket_policy_allows(lam: Lambda) -> None:
    """PublishLayerVersion (and CreateFunction) read S3 as S3 would authorize the caller: a zip in
    another account's bucket only where that bucket's policy grants it."""
    s3 = lam.server.client("s3")
    bucket = unique("layer-private")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="secret.zip", Body=zipped({"python/secret.py": "KEY = 'mine'\n"}))
    other_id, other_keys = other_account(lam.server)
    other = lam.server.client("lambda", keys=other_keys)
    role = lam.server.client("iam", keys=other_keys).create_role(
        RoleName=unique("fn-role"), AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    for attempt in (lambda: other.publish_layer_version(
            LayerName=unique("steal"), Content={"S3Bucket": bucket, "S3Key": "secret.zip"}),
                    lambda: other.create_function(
            FunctionName=unique("steal-fn"), Runtime="python3.11", Handler="app.handler",
            Role=role, Code={"S3Bucket": bucket, "S3Key": "secret.zip"})):
        with pytest.raises(ClientError) as refused:
            attempt()
        assert code(refused) == "AccessDeniedException", refused.value.response["Error"]
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{other_id}:root"}, "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/*"}]}))
    shared_layer = other.publish_layer_version(LayerName=unique("granted"),
                                               Content={"S3Bucket": bucket, "S3Key": "secret.zip"})
    assert shared_layer["Version"] == 1
