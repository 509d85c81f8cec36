"""Lambda with boto3 and the AWS CLI against a real minicloud: functions run in the engine's
containers through the Runtime API (python3.11 here; node, provided and images in
test_lambda_runtimes.py; asynchronous invocations, S3 events and URLs in test_lambda_events.py)."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import threading
import time
import urllib.request
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.server import MinicloudServer

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runc"), reason="Lambda needs root and runc")

TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


def zipped(files: dict[str, str], modes: dict[str, int] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = ((modes or {}).get(name, 0o644) | 0o100000) << 16
            archive.writestr(info, content)
    return buffer.getvalue()


class Lambda:
    """The test's view of one server: clients, an execution role, function helpers."""

    def __init__(self, server: MinicloudServer) -> None:
        self.server = server
        self.client = server.client("lambda", read_timeout=120)
        self.logs = server.client("logs")
        iam = server.client("iam")
        self.role = iam.create_role(RoleName="lambda-exec", AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
        iam.put_role_policy(RoleName="lambda-exec", PolicyName="all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))

    def create(self, code: str | bytes, handler: str = "app.handler", runtime: str = "python3.11",
               name: str | None = None, filename: str = "app.py", **extra: Any) -> str:
        name = name or f"fn-{uuid.uuid4().hex[:10]}"
        package = code if isinstance(code, bytes) else zipped({filename: code})
        self.client.create_function(FunctionName=name, Runtime=runtime, Role=self.role, Handler=handler,
                                    Code={"ZipFile": package}, **extra)
        self.client.get_waiter("function_active_v2").wait(FunctionName=name,
                                                          WaiterConfig={"Delay": 1, "MaxAttempts": 900})
        return name

    def invoke(self, name: str, event: Any = None, **extra: Any) -> tuple[dict[str, Any], Any]:
        response = self.client.invoke(FunctionName=name, Payload=json.dumps(event or {}).encode(), **extra)
        body = response["Payload"].read()
        return response, json.loads(body) if body else None


@pytest.fixture(scope="session")
def lambda_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MinicloudServer]:
    """One minicloud for the Lambda tests, with short asynchronous retry delays."""
    server = MinicloudServer(tmp_path_factory.mktemp("lambda"), env={
        "MINICLOUD_LAMBDA_RETRY_DELAYS": "1,1", "MINICLOUD_LAMBDA_QUEUE_INTERVAL": "0.2",
        "MINICLOUD_LAMBDA_FREEZE_DELAY": "0.2", "MINICLOUD_LAMBDA_LAYER_DISCARD_DELAY": "0.5"})
    server.start()
    yield server
    server.stop(timeout=60)  # environments are stopped by the engine, then their namespaces removed
    netns = server.data_dir / "lambda" / "netns"
    assert not [p for p in [netns, *netns.glob("*")] if os.path.ismount(p)], "network namespaces left mounted"


@pytest.fixture(scope="session")
def lam(lambda_server: MinicloudServer) -> Lambda:
    return Lambda(lambda_server)


HANDLER = """
import os, time
def handler(event, context):
    print("event", event)
    return {
        "event": event, "request_id": context.aws_request_id, "name": context.function_name,
        "version": context.function_version, "arn": context.invoked_function_arn,
        "memory": context.memory_limit_in_mb, "group": context.log_group_name, "stream": context.log_stream_name,
        "remaining": context.get_remaining_time_in_millis(),
        "env": {k: os.environ.get(k) for k in ("AWS_REGION", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_VERSION",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "_HANDLER", "LAMBDA_TASK_ROOT", "GREETING", "AWS_ENDPOINT_URL",
                "AWS_LAMBDA_RUNTIME_API")},
        "key": os.environ.get("AWS_ACCESS_KEY_ID", ""), "pid": os.getpid(), "task": sorted(os.listdir("/var/task")),
        "writable_task": os.access("/var/task", os.W_OK) and os.statvfs("/var/task").f_flag & 1 == 0,
    }
"""


def test_python_handler_context_environment_and_warm_reuse(lam: Lambda) -> None:
    name = lam.create(HANDLER, Environment={"Variables": {"GREETING": "hello"}}, MemorySize=256, Timeout=7)
    response, result = lam.invoke(name, {"x": 1})
    assert response["StatusCode"] == 200 and "FunctionError" not in response
    assert response["ExecutedVersion"] == "$LATEST"
    assert result["event"] == {"x": 1}
    assert result["name"] == name and result["version"] == "$LATEST" and result["memory"] == "256"
    assert result["arn"].endswith(f":function:{name}")
    assert result["group"] == f"/aws/lambda/{name}" and "[$LATEST]" in result["stream"]
    assert 0 < result["remaining"] <= 7000
    env = result["env"]
    assert env["AWS_REGION"] == "us-east-1" and env["AWS_LAMBDA_FUNCTION_NAME"] == name
    assert env["_HANDLER"] == "app.handler" and env["LAMBDA_TASK_ROOT"] == "/var/task"
    assert env["GREETING"] == "hello" and env["AWS_LAMBDA_RUNTIME_API"] == "127.0.0.1:9001"
    assert env["AWS_ENDPOINT_URL"] == f"http://127.0.0.1:{lam.server.port}"
    assert result["key"].startswith("ASIA")  # the execution role's temporary credentials
    assert result["task"] == ["app.py"] and not result["writable_task"]
    _, again = lam.invoke(name, {"x": 2})
    assert again["pid"] == result["pid"] and again["request_id"] != result["request_id"]  # warm
    deadline = time.monotonic() + 30  # frozen meanwhile (cgroup freezer, after 0.2 s idle), thawed for the next one
    while "FROZEN" not in freezer_states(lam.server) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "FROZEN" in freezer_states(lam.server)
    _, thawed = lam.invoke(name, {"x": 3})
    assert thawed["pid"] == result["pid"]


def freezer_states(server: MinicloudServer) -> list[str]:
    """The cgroup freezer state of each of the server's containers."""
    states = []
    for container in (server.data_dir / "engine" / "containers").iterdir():
        state = Path(f"/sys/fs/cgroup/freezer/minicloud/{container.name}/freezer.state")
        if state.exists():
            states.append(state.read_text().strip())
    return states


def test_the_sdk_inside_calls_minicloud_as_the_execution_role(lam: Lambda) -> None:
    code = """
import os, boto3
def handler(event, context):
    sts = boto3.client("sts", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    return sts.get_caller_identity()["Arn"]
"""
    name = lam.create(code)
    response, arn = lam.invoke(name)
    assert "FunctionError" not in response, arn
    assert arn == f"arn:aws:sts::{lam.server.account_id}:assumed-role/lambda-exec/{name}"


def test_handler_errors_are_reported_as_aws_does(lam: Lambda) -> None:
    name = lam.create("def handler(event, context):\n    raise ValueError('bad input: ' + str(event['n']))\n")
    response, error = lam.invoke(name, {"n": 7})
    assert response["StatusCode"] == 200 and response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "ValueError" and error["errorMessage"] == "bad input: 7"
    assert any("app.py" in line for line in error["stackTrace"])


def test_import_and_handler_errors(lam: Lambda) -> None:
    missing = lam.create("def handler(e, c):\n    return 1\n", handler="nothere.handler")
    response, error = lam.invoke(missing)
    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "Runtime.ImportModuleError"
    assert error["errorMessage"] == "Unable to import module 'nothere': No module named 'nothere'"
    no_function = lam.create("def other(e, c):\n    return 1\n")
    _, error = lam.invoke(no_function)
    assert error["errorType"] == "Runtime.HandlerNotFound"
    assert error["errorMessage"] == "Handler 'handler' missing on module 'app'"
    syntax = lam.create("def handler(e, c)\n    return 1\n")
    _, error = lam.invoke(syntax)
    assert error["errorType"] == "Runtime.UserCodeSyntaxError"
    assert error["errorMessage"].startswith("Syntax error in module 'app'")


def test_timeout_kills_the_invocation(lam: Lambda) -> None:
    name = lam.create("import time\ndef handler(e, c):\n    print('sleeping')\n    time.sleep(30)\n", Timeout=1)
    started = time.monotonic()
    response, error = lam.invoke(name, LogType="Tail")
    # cut at its 1 s timeout, long before the handler's 30 s sleep ends (the bound leaves room for a cold
    # start on a busy machine)
    assert 1 <= time.monotonic() - started < 25
    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "Sandbox.Timedout"
    assert error["errorMessage"].endswith("Error: Task timed out after 1.00 seconds")
    tail = base64.b64decode(response["LogResult"]).decode()
    assert "Task timed out after 1.00 seconds" in tail and "REPORT RequestId" in tail
    _, fresh = lam.invoke(lam.create("def handler(e, c):\n    return 'ok'\n", name=f"{name}-b"))
    assert fresh == "ok"
    response, error = lam.invoke(name)  # a new environment after the kill
    assert error["errorType"] == "Sandbox.Timedout"


def test_memory_limit_is_enforced(lam: Lambda) -> None:
    code = "def handler(e, c):\n    blocks = [bytearray(16 << 20) for _ in range(40)]\n    return len(blocks)\n"
    name = lam.create(code, MemorySize=128, Timeout=20)
    response, error = lam.invoke(name)
    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "Runtime.OutOfMemory"
    assert error["errorMessage"].endswith("Error: Runtime exited with error: signal: killed")
    lam.client.update_function_configuration(FunctionName=name, MemorySize=1024)
    lam.client.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1})
    response, result = lam.invoke(name)
    assert "FunctionError" not in response and result == 40


HOLDING_HANDLER = """
import os, time, boto3
def handler(event, context):
    if event.get("hold"):  # says it runs, then runs until the test lets it go
        s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
        s3.put_object(Bucket=event["hold"], Key="started", Body=b"")
        while "Contents" not in s3.list_objects_v2(Bucket=event["hold"], Prefix="release"):
            time.sleep(0.1)
    return "done"
"""


def test_reserved_concurrency_throttles(lam: Lambda) -> None:
    name = lam.create(HOLDING_HANDLER, Timeout=120)
    lam.client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    with pytest.raises(ClientError) as caught:
        lam.invoke(name)
    assert caught.value.response["Error"]["Code"] == "TooManyRequestsException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    lam.client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    assert lam.client.get_function(FunctionName=name)["Concurrency"] == {"ReservedConcurrentExecutions": 1}
    s3 = lam.server.client("s3")
    gate = f"gate-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=gate)
    results: list[Any] = []
    slow = threading.Thread(target=lambda: results.append(lam.invoke(name, {"hold": gate})[1]))
    slow.start()
    try:
        deadline = time.monotonic() + 60  # until the first invocation surely runs (a cold start first)
        while "Contents" not in s3.list_objects_v2(Bucket=gate, Prefix="started") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "Contents" in s3.list_objects_v2(Bucket=gate, Prefix="started"), "the held invocation never started"
        with pytest.raises(ClientError) as caught:
            lam.invoke(name)
        assert caught.value.response["Error"]["Code"] == "TooManyRequestsException"
    finally:
        s3.put_object(Bucket=gate, Key="release", Body=b"")
        slow.join(120)
    assert results == ["done"]
    lam.client.delete_function_concurrency(FunctionName=name)
    assert lam.invoke(name)[1] == "done"


def test_versions_aliases_and_qualified_invocation(lam: Lambda) -> None:
    name = lam.create("def handler(e, c):\n    return ['one', c.invoked_function_arn]\n")
    v1 = lam.client.publish_version(FunctionName=name)
    assert v1["Version"] == "1" and v1["FunctionArn"].endswith(f"{name}:1")
    lam.client.update_function_code(FunctionName=name, ZipFile=zipped(
        {"app.py": "def handler(e, c):\n    return ['two', c.invoked_function_arn]\n"}))
    lam.client.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1})
    lam.client.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    assert lam.invoke(name)[1][0] == "two"
    response, result = lam.invoke(name, Qualifier="1")
    assert result[0] == "one" and response["ExecutedVersion"] == "1"
    response, result = lam.invoke(name, Qualifier="live")
    assert result == ["one", f"{v1['FunctionArn'].rsplit(':', 1)[0]}:live"] and response["ExecutedVersion"] == "1"
    v2 = lam.client.publish_version(FunctionName=name)
    lam.client.update_alias(FunctionName=name, Name="live", FunctionVersion=v2["Version"])
    assert lam.invoke(f"{name}:live")[1][0] == "two"
    versions = [v["Version"] for v in lam.client.list_versions_by_function(FunctionName=name)["Versions"]]
    assert versions == ["$LATEST", "1", "2"]
    assert [a["Name"] for a in lam.client.list_aliases(FunctionName=name)["Aliases"]] == ["live"]
    with pytest.raises(ClientError) as caught:
        lam.client.delete_function(FunctionName=name, Qualifier="2")
    assert caught.value.response["Error"]["Code"] == "ResourceConflictException"
    lam.client.delete_alias(FunctionName=name, Name="live")
    lam.client.delete_function(FunctionName=name, Qualifier="2")
    with pytest.raises(ClientError) as caught:
        lam.invoke(name, Qualifier="2")
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_get_function_code_location_downloads_the_zip(lam: Lambda) -> None:
    package = zipped({"app.py": "def handler(e, c):\n    return 1\n"})
    name = lam.create(package, Tags={"team": "a"})
    got = lam.client.get_function(FunctionName=name)
    assert got["Tags"] == {"team": "a"} and got["Code"]["RepositoryType"] == "S3"
    assert got["Configuration"]["State"] == "Active" and got["Configuration"]["LastUpdateStatus"] == "Successful"
    with urllib.request.urlopen(got["Code"]["Location"], timeout=10) as response:
        assert response.read() == package
    tampered = got["Code"]["Location"].replace("Signature=", "Signature=0")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(tampered, timeout=10)
    assert caught.value.code == 403


def test_list_functions_paginates(lam: Lambda) -> None:
    for i in range(3):
        lam.create("def handler(e, c):\n    return 1\n", name=f"page-{i}")
    names = [f["FunctionName"] for page in lam.client.get_paginator("list_functions").paginate(
        PaginationConfig={"PageSize": 2}) for f in page["Functions"]]
    assert [n for n in names if n.startswith("page-")] == ["page-0", "page-1", "page-2"]
    assert len(names) == len(set(names))


def test_bad_input_gets_aws_errors_and_creates_nothing(lam: Lambda) -> None:
    def code_of(**kw: Any) -> str:
        with pytest.raises(ClientError) as caught:
            lam.client.create_function(FunctionName="bad", Role=lam.role, Handler="app.handler", **kw)
        return str(caught.value.response["Error"]["Code"])

    assert code_of(Runtime="python3.11", Code={"ZipFile": b"not a zip"}) == "InvalidParameterValueException"
    # as AWS: an unknown runtime fails the model's enum (ValidationException); one AWS knows but minicloud
    # does not run is refused with InvalidParameterValueException
    assert code_of(Runtime="cobol85", Code={"ZipFile": zipped({"app.py": ""})}) == "ValidationException"
    assert code_of(Runtime="java21", Code={"ZipFile": zipped({"app.py": ""})}) == "InvalidParameterValueException"
    with pytest.raises(ClientError) as caught:  # over 50 MB zipped: refused before anything is kept
        lam.client.create_function(FunctionName="bad", Role=lam.role, Handler="app.handler", Runtime="python3.11",
                                   Code={"ZipFile": zipped({"app.py": ""}) + os.urandom(51 * 1024 * 1024)})
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert code_of(Runtime="python3.11", Code={"ZipFile": zipped({"app.py": ""})}, Timeout=901) == \
        "InvalidParameterValueException"
    with pytest.raises(ClientError) as caught:
        lam.client.get_function(FunctionName="bad")
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    name = lam.create("def handler(e, c):\n    return 1\n")
    with pytest.raises(ClientError) as caught:
        lam.client.create_function(FunctionName=name, Runtime="python3.11", Role=lam.role, Handler="app.handler",
                                   Code={"ZipFile": zipped({"app.py": ""})})
    assert caught.value.response["Error"]["Code"] == "ResourceConflictException"
    with pytest.raises(ClientError) as caught:
        lam.client.invoke(FunctionName=name, Payload=b"x" * (6 * 1024 * 1024 + 1))
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    with pytest.raises(ClientError) as caught:
        lam.client.invoke(FunctionName=name, InvocationType="Event", Payload=b'"' + b"x" * (256 * 1024) + b'"')
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert lam.client.invoke(FunctionName=name, InvocationType="DryRun")["StatusCode"] == 204


def test_cli_create_invoke_and_delete(lam: Lambda, tmp_path: Path) -> None:
    (tmp_path / "fn.zip").write_bytes(zipped({"app.py": "def handler(e, c):\n    return {'sum': e['a'] + e['b']}\n"}))
    server = lam.server
    created = server.aws_json("lambda", "create-function", "--function-name", "cli-fn", "--runtime", "python3.11",
                              "--role", lam.role, "--handler", "app.handler", "--zip-file",
                              f"fileb://{tmp_path / 'fn.zip'}")
    assert created["FunctionName"] == "cli-fn" and created["State"] == "Pending"
    server.aws("lambda", "wait", "function-active-v2", "--function-name", "cli-fn")
    out = tmp_path / "out.json"
    result = server.aws_json("lambda", "invoke", "--function-name", "cli-fn", "--payload", '{"a": 2, "b": 3}',
                             str(out))  # AWS CLI v1 takes a blob given as text as it is
    assert result["StatusCode"] == 200 and json.loads(out.read_text()) == {"sum": 5}
    server.aws("lambda", "delete-function", "--function-name", "cli-fn")
    assert server.aws("lambda", "get-function", "--function-name", "cli-fn", check=False).returncode != 0


def test_logs_reach_cloudwatch_logs(lam: Lambda) -> None:
    name = lam.create("def handler(e, c):\n    print('line from', c.aws_request_id)\n    return 1\n")
    lam.client.invoke(FunctionName=name, Payload=b"{}")
    group = f"/aws/lambda/{name}"
    deadline = time.monotonic() + 30
    messages: list[str] = []
    while time.monotonic() < deadline:
        streams = lam.logs.describe_log_streams(logGroupName=group)["logStreams"] \
            if lam.logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"] else []
        if streams:
            events = lam.logs.get_log_events(logGroupName=group, logStreamName=streams[0]["logStreamName"],
                                             startFromHead=True)["events"]
            messages = [e["message"] for e in events]
            if any(m.startswith("REPORT") for m in messages):
                break
        time.sleep(0.2)
    assert messages[0].startswith("START RequestId: ") and messages[0].endswith("Version: $LATEST")
    assert messages[1].startswith("line from ")
    assert messages[2].startswith("END RequestId: ")
    assert messages[3].startswith("REPORT RequestId: ") and "Init Duration:" in messages[3]
    assert "Memory Size: 128 MB" in messages[3]
    found = lam.logs.filter_log_events(logGroupName=group, filterPattern='"line from"')["events"]
    assert len(found) == 1 and found[0]["message"] == messages[1]


def test_payloads_up_to_the_synchronous_limit(lam: Lambda) -> None:
    name = lam.create("def handler(e, c):\n    return {'n': len(e['data']), 'echo': e['data'][:1000000]}\n")
    data = "y" * (5 * 1024 * 1024)  # over the server's streaming threshold, under Lambda's 6 MB
    response, result = lam.invoke(name, {"data": data})
    assert "FunctionError" not in response
    assert result == {"n": len(data), "echo": data[:1000000]}


def test_code_from_s3(lam: Lambda) -> None:
    s3 = lam.server.client("s3")
    s3.create_bucket(Bucket="lambda-code")
    s3.put_object(Bucket="lambda-code", Key="v1.zip", Body=zipped({"app.py": "def handler(e, c):\n    return 'v1'\n"}))
    s3.put_object(Bucket="lambda-code", Key="v2.zip", Body=zipped({"app.py": "def handler(e, c):\n    return 'v2'\n"}))
    name = f"s3-{uuid.uuid4().hex[:8]}"
    lam.client.create_function(FunctionName=name, Runtime="python3.11", Role=lam.role, Handler="app.handler",
                               Code={"S3Bucket": "lambda-code", "S3Key": "v1.zip"})
    lam.client.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1})
    assert lam.invoke(name)[1] == "v1"
    lam.client.update_function_code(FunctionName=name, S3Bucket="lambda-code", S3Key="v2.zip")
    lam.client.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1})
    assert lam.invoke(name)[1] == "v2"
    with pytest.raises(ClientError) as caught:
        lam.client.create_function(FunctionName=f"{name}-x", Runtime="python3.11", Role=lam.role,
                                   Handler="app.handler", Code={"S3Bucket": "lambda-code", "S3Key": "missing.zip"})
    assert caught.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert "NoSuchKey" in caught.value.response["Error"]["Message"]


def test_code_from_an_sse_kms_object(lam: Lambda) -> None:
    s3, kms = lam.server.client("s3"), lam.server.client("kms")
    key_id = kms.create_key(Description="lambda code")["KeyMetadata"]["KeyId"]
    s3.create_bucket(Bucket="lambda-kms-code")
    s3.put_object(Bucket="lambda-kms-code", Key="app.zip", ServerSideEncryption="aws:kms", SSEKMSKeyId=key_id,
                  Body=zipped({"app.py": "def handler(e, c):\n    return 'sealed by kms'\n"}))
    name = f"kms-{uuid.uuid4().hex[:8]}"
    lam.client.create_function(FunctionName=name, Runtime="python3.11", Role=lam.role, Handler="app.handler",
                               Code={"S3Bucket": "lambda-kms-code", "S3Key": "app.zip"})
    lam.client.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1})
    assert lam.invoke(name)[1] == "sealed by kms"
    kms.disable_key(KeyId=key_id)  # KMS refuses the data key now: S3's error, inside Lambda's
    with pytest.raises(ClientError) as caught:
        lam.client.update_function_code(FunctionName=name, S3Bucket="lambda-kms-code", S3Key="app.zip")
    assert caught.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert "KMS.DisabledException" in caught.value.response["Error"]["Message"]


def test_alias_routing_splits_invocations_between_versions(lam: Lambda) -> None:
    name = lam.create("def handler(e, c):\n    return 'one'\n")
    lam.client.publish_version(FunctionName=name)
    two = zipped({"app.py": "def handler(e, c):\n    return 'two'\n"})
    lam.client.update_function_code(FunctionName=name, ZipFile=two)
    lam.client.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1})
    lam.client.publish_version(FunctionName=name)
    alias = lam.client.create_alias(FunctionName=name, Name="canary", FunctionVersion="1",
                                    RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}})
    assert alias["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.5}}
    seen: dict[str, set[Any]] = {}
    for _ in range(40):
        response, result = lam.invoke(name, Qualifier="canary")
        seen.setdefault(response["ExecutedVersion"], set()).add(result)
    assert seen == {"1": {"one"}, "2": {"two"}}  # both taken (the chance of missing one: 2 * 0.5**40)
