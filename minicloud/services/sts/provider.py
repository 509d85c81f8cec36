"""AWS STS."""

from __future__ import annotations

from typing import Any

from minicloud.aws.context import RequestContext
from minicloud.aws.provider import Provider
from minicloud.runtime import Runtime


class StsProvider(Provider):
    service_name = "sts"

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def get_caller_identity(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        ctx.allow_unauthenticated()  # GetCallerIdentity needs no permission, even under an explicit deny
        p = ctx.principal
        return {"UserId": p.user_id, "Account": p.account_id, "Arn": p.arn}
