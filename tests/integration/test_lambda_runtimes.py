"""Lambda runtimes beyond python3.11: nodejs18.x, provided.al2023 (a bash bootstrap speaking the
Runtime API over /dev/tcp), and a container-image function built and pushed with the docker CLI."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from minicloud.services.lambda_.execution.spec import RUNTIME_CLIENTS
from tests.integration import test_lambda as shared
from tests.integration.test_engine import DOCKER
from tests.integration.test_lambda import Lambda, zipped

lambda_server = shared.lambda_server  # the session's Lambda server and helper, shared with test_lambda.py
lam = shared.lam

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runc"), reason="Lambda needs root and runc")

NODE_HANDLER = """
exports.handler = async (event, context) => {
  console.log("node got", JSON.stringify(event));
  if (event.fail) { throw new TypeError("node failure " + event.fail); }
  return { echo: event, name: context.functionName, id: context.awsRequestId,
           remaining: context.getRemainingTimeInMillis(), version: process.version,
           region: process.env.AWS_REGION };
};
"""

NODE_ESM = """
export const handler = (event, context, callback) => {
  callback(null, { esm: true, arn: context.invokedFunctionArn });
};
"""

BOOTSTRAP = r"""#!/bin/bash
set -euo pipefail
HOST=${AWS_LAMBDA_RUNTIME_API%:*}
PORT=${AWS_LAMBDA_RUNTIME_API#*:}
while true; do
  exec 3<>"/dev/tcp/$HOST/$PORT"
  printf 'GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$HOST" >&3
  REQUEST_ID=""
  LENGTH=0
  while IFS= read -r line <&3; do
    line=${line%$'\r'}
    [ -z "$line" ] && break
    case "${line,,}" in
      lambda-runtime-aws-request-id:*) REQUEST_ID=${line#*: } ;;
      content-length:*) LENGTH=${line#*: } ;;
    esac
  done
  EVENT=$(head -c "$LENGTH" <&3)
  exec 3<&-
  echo "bootstrap handling $REQUEST_ID"
  RESPONSE="{\"echo\": $EVENT, \"shell\": \"bash ${BASH_VERSINFO[0]}\", \"handler\": \"$_HANDLER\"}"
  exec 3<>"/dev/tcp/$HOST/$PORT"
  HEAD='HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s'
  printf "POST /2018-06-01/runtime/invocation/%s/response $HEAD" "$REQUEST_ID" "$HOST" "${#RESPONSE}" "$RESPONSE" >&3
  cat <&3 >/dev/null
  exec 3<&-
done
"""


def test_node_handler(lam: Lambda) -> None:
    name = lam.create(NODE_HANDLER, runtime="nodejs18.x", handler="index.handler", filename="index.js")
    response, result = lam.invoke(name, {"a": [1, 2]})
    assert "FunctionError" not in response, result
    assert result["echo"] == {"a": [1, 2]} and result["name"] == name and result["region"] == "us-east-1"
    assert result["version"].startswith("v18.") and 0 < result["remaining"] <= 3000
    response, error = lam.invoke(name, {"fail": "x"})
    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "TypeError" and error["errorMessage"] == "node failure x"
    assert error["trace"][0] == "TypeError: node failure x"


def test_node_es_module_with_a_callback(lam: Lambda) -> None:
    name = lam.create(NODE_ESM, runtime="nodejs18.x", handler="index.handler", filename="index.mjs")
    response, result = lam.invoke(name)
    assert "FunctionError" not in response, result
    assert result == {"esm": True, "arn": lam.client.get_function(FunctionName=name)["Configuration"]["FunctionArn"]}
    missing = lam.create(NODE_ESM, runtime="nodejs18.x", handler="other.handler", filename="index.mjs")
    _, error = lam.invoke(missing)
    assert error["errorType"] == "Runtime.ImportModuleError"
    absent = lam.create(NODE_ESM, runtime="nodejs18.x", handler="index.nothing", filename="index.mjs")
    _, error = lam.invoke(absent)
    assert error["errorType"] == "Runtime.HandlerNotFound"


def test_provided_runtime_with_a_shell_bootstrap(lam: Lambda) -> None:
    package = zipped({"bootstrap": BOOTSTRAP}, modes={"bootstrap": 0o755})
    name = lam.create(package, runtime="provided.al2023", handler="function.handler")
    for i in range(2):
        response, result = lam.invoke(name, {"i": i})
        assert "FunctionError" not in response, result
        assert result == {"echo": {"i": i}, "shell": "bash 5", "handler": "function.handler"}


def test_a_bootstrap_that_exits_is_reported(lam: Lambda) -> None:
    package = zipped({"bootstrap": "#!/bin/sh\necho dying\nexit 3\n"}, modes={"bootstrap": 0o755})
    name = lam.create(package, runtime="provided.al2023", handler="x")
    response, error = lam.invoke(name)
    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "Runtime.ExitError"
    assert error["errorMessage"].endswith("Runtime exited with error: exit status 3")


class Docker:
    """The docker CLI against the server's engine, signed in to its registry."""

    def __init__(self, lam: Lambda, tmp_path: Path) -> None:
        server = lam.server
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
                    "DOCKER_HOST": f"unix://{server.data_dir / 'docker.sock'}",
                    "DOCKER_CONFIG": str(tmp_path / "docker")}
        self.host = f"127.0.0.1:{server.port}"
        password = subprocess.run([str(Path(sys.executable).with_name("aws")), "--endpoint-url", server.endpoint,
                                   "ecr", "get-login-password"], env=server.cli_env(), capture_output=True, text=True,
                                  check=True).stdout
        self("login", "--username", "AWS", "--password-stdin", self.host, stdin=password)

    def __call__(self, *args: str, stdin: str | None = None) -> str:
        result = subprocess.run([DOCKER, *args], env=self.env, capture_output=True, text=True, timeout=300,
                                input=stdin)
        assert result.returncode == 0, f"docker {' '.join(args)}: {result.stderr}"
        return result.stdout

    def publish(self, lam: Lambda, context: Path, repository: str) -> str:
        """Build ``context``, push it to minicloud's registry, forget it locally; its ECR-style URI."""
        lam.server.client("ecr").create_repository(repositoryName=repository)
        tag = f"{self.host}/{repository}:v1"
        self("build", "-t", tag, str(context))
        self("push", tag)
        self("rmi", tag)  # Lambda pulls it from the registry itself
        return f"{lam.server.account_id}.dkr.ecr.us-east-1.amazonaws.com/{repository}:v1"


def create_image_function(lam: Lambda, name: str, uri: str) -> None:
    lam.client.create_function(FunctionName=name, PackageType="Image", Role=lam.role, Code={"ImageUri": uri})
    lam.client.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1})


def test_container_image_function(lam: Lambda, tmp_path: Path) -> None:
    lam.create("def handler(e, c):\n    return 1\n")  # the python runtime's image is in the registry now
    docker = Docker(lam, tmp_path)
    context = tmp_path / "context"
    context.mkdir()
    shutil.copy(RUNTIME_CLIENTS / "bootstrap.py", context / "bootstrap.py")
    (context / "app.py").write_text("import platform\ndef handler(e, c):\n    return {'image': True, 'e': e, "
                                    "'py': platform.python_version(), 'fn': c.function_name}\n")
    (context / "Dockerfile").write_text(
        "FROM minicloud/lambda-python:3.11\nCOPY bootstrap.py /var/runtime/bootstrap.py\n"
        "COPY app.py /var/task/app.py\nWORKDIR /var/task\n"
        'ENTRYPOINT ["/usr/bin/python3", "/var/runtime/bootstrap.py"]\nCMD ["app.handler"]\n')
    uri = docker.publish(lam, context, "team/fn-image")
    create_image_function(lam, "image-fn", uri)
    got = lam.client.get_function(FunctionName="image-fn")
    assert got["Code"]["ImageUri"] == uri and got["Configuration"]["PackageType"] == "Image"
    response, result = lam.invoke("image-fn", {"k": "v"})
    assert "FunctionError" not in response, result
    assert result == {"image": True, "e": {"k": "v"}, "py": result["py"], "fn": "image-fn"}
    assert result["py"].startswith("3.11.")


def test_awslambdaric_works_unchanged(lam: Lambda, tmp_path: Path) -> None:
    """AWS's own runtime interface client (from PyPI, copied from this venv) against minicloud's Runtime API."""
    import awslambdaric  # type: ignore[import-untyped]
    import simplejson  # type: ignore[import-untyped]
    import snapshot_restore_py  # type: ignore[import-untyped]

    lam.create("def handler(e, c):\n    return 1\n")
    docker = Docker(lam, tmp_path)
    context = tmp_path / "context"
    (context / "ric").mkdir(parents=True)
    for module in (awslambdaric, simplejson):
        shutil.copytree(Path(module.__file__).parent, context / "ric" / module.__name__,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(snapshot_restore_py.__file__, context / "ric")
    for extension in Path(awslambdaric.__file__).parent.parent.glob("runtime_client.*.so"):  # its C++ part
        shutil.copy(extension, context / "ric")
    (context / "app.py").write_text(
        "def handler(event, context):\n    print('via awslambdaric')\n"
        "    if event.get('fail'):\n        raise KeyError('missing')\n"
        "    return {'ric': True, 'event': event, 'id': context.aws_request_id,\n"
        "            'left': context.get_remaining_time_in_millis()}\n")
    (context / "Dockerfile").write_text(
        "FROM minicloud/lambda-python:3.11\nCOPY ric /opt/ric\nCOPY app.py /var/task/app.py\n"
        "ENV PYTHONPATH=/opt/ric\nWORKDIR /var/task\n"
        'ENTRYPOINT ["/usr/bin/python3", "-m", "awslambdaric"]\nCMD ["app.handler"]\n')
    create_image_function(lam, "ric-fn", docker.publish(lam, context, "team/ric"))
    response, result = lam.invoke("ric-fn", {"a": 1}, LogType="Tail")
    assert "FunctionError" not in response, (result, base64.b64decode(response["LogResult"]).decode())
    assert result["ric"] is True and result["event"] == {"a": 1} and 0 < result["left"] <= 3000
    assert "via awslambdaric" in base64.b64decode(response["LogResult"]).decode()
    response, error = lam.invoke("ric-fn", {"fail": True})
    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "KeyError" and error["errorMessage"] == "'missing'"
