"""Who may call a function URL. AWS_IAM: the request must carry a valid SigV4 signature (service
``lambda``), and the signer must be allowed ``lambda:InvokeFunctionUrl`` on the function by IAM policy
evaluation (identity policies, and the function's resource policy). NONE: the function's resource
policy must allow ``lambda:InvokeFunctionUrl`` to everyone (``"Principal": "*"``, as AddPermission
with FunctionUrlAuthType NONE writes it); without one, AWS answers 403 Forbidden too."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from minicloud.aws.auth import sigv4
from minicloud.aws.auth.failures import AuthFailure
from minicloud.aws.request import AwsRequest, Headers
from minicloud.iam.identity import ANONYMOUS
from minicloud.server.asgi import Scope


def request_of(scope: Scope, body: bytes) -> AwsRequest:
    headers = Headers((k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"])
    client = scope.get("client")
    return AwsRequest(method=scope["method"],
                      path=(scope.get("raw_path") or scope["path"].encode()).decode("latin-1").split("?", 1)[0],
                      query=scope.get("query_string", b"").decode("latin-1"), headers=headers, body=body,
                      client_ip=client[0] if client else "127.0.0.1", secure=scope.get("scheme") == "https")


async def authorize_public(runtime: Any, scope: Scope, function_arn: str, account_id: str,
                           resource_policy: str | None) -> tuple[int, str]:
    """(0, "") when the function's policy lets anyone invoke its AuthType NONE URL, else 403."""
    if not resource_policy:
        return 403, "Forbidden"
    client = scope.get("client")
    context: dict[str, str | list[str]] = {"lambda:FunctionUrlAuthType": "NONE",
                                           "aws:SourceIp": client[0] if client else "127.0.0.1"}
    result = await runtime.authorizer.check(ANONYMOUS, "lambda:InvokeFunctionUrl", function_arn, context=context,
                                            resource_policy=resource_policy, resource_account=account_id)
    return (0, "") if result.allowed else (403, "Forbidden")


async def authorize(runtime: Any, scope: Scope, body: bytes, function_arn: str, account_id: str,
                    resource_policy: str | None) -> tuple[int, str]:
    """(0, "") when the signed caller may invoke the URL, else the HTTP status and message to answer."""
    request = request_of(scope, body)
    try:
        auth = sigv4.parse_auth(request)
    except AuthFailure:
        return 403, "Forbidden"
    if auth is None or auth.service != "lambda":
        return 403, "Forbidden"
    credential = await runtime.credentials.resolve(auth.access_key_id)
    if credential is None or not credential.active:
        return 403, "The security token included in the request is invalid."
    now = datetime.now(UTC)
    try:
        sigv4.verify(request, auth, credential.secret_access_key, now)
    except AuthFailure:
        return 403, "The request signature we calculated does not match the signature you provided."
    if credential.session_token is not None and auth.session_token != credential.session_token:
        return 403, "The security token included in the request is invalid."
    context: dict[str, str | list[str]] = {"lambda:FunctionUrlAuthType": "AWS_IAM",
                                           "aws:SourceIp": request.client_ip,
                                           "aws:PrincipalAccount": credential.principal.account_id}
    result = await runtime.authorizer.check(credential.principal, "lambda:InvokeFunctionUrl", function_arn,
                                            context=context, resource_policy=resource_policy,
                                            resource_account=account_id)
    return (0, "") if result.allowed else (403, "Forbidden")
