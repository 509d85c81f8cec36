"""S3 event notifications: S3 writes a row into ``s3_event_outbox`` in the same transaction as the
object's commit; this controller delivers each as an asynchronous invocation, once the function's
resource policy allows ``s3.amazonaws.com`` (with its SourceArn / SourceAccount conditions), and
deletes the row. Events for a missing function, or one whose policy does not allow S3, are dropped
(S3 would have refused the notification configuration; AWS drops such deliveries too).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import sqlalchemy as sa

from minicloud.iam.policy import (
    AuthzRequest,
    MalformedPolicyDocument,
    PolicyKind,
    PrincipalInfo,
    PrincipalKind,
    Verdict,
    evaluate,
    parse_policy,
)
from minicloud.services.lambda_ import model
from minicloud.services.lambda_.tables import s3_event_outbox

log = logging.getLogger("minicloud.lambda")


S3_SERVICE = PrincipalInfo(arn="s3.amazonaws.com", account_id="", kind=PrincipalKind.SERVICE)


def s3_may_invoke(policy: dict[str, Any] | None, bucket: str, account_id: str, qualifier: str | None,
                  function_arn: str) -> bool:
    """Whether the function's resource policy lets s3.amazonaws.com invoke it (``function_arn``, unqualified,
    with ``qualifier``) for ``bucket`` of ``account_id``, by IAM's own evaluator: every condition operator,
    aws:SourceArn / aws:SourceAccount, and an explicit Deny wins. A statement on the unqualified function
    covers its versions and aliases too."""
    document = {k: v for k, v in (policy or {}).items() if not k.startswith("_")}
    if not document.get("Statement"):
        return False
    try:
        parsed = parse_policy(json.dumps(document), PolicyKind.RESOURCE)
    except MalformedPolicyDocument:
        return False
    context = {"aws:SourceArn": f"arn:aws:s3:::{bucket}", "aws:SourceAccount": account_id}
    owner = function_arn.split(":")[4]
    arns = [function_arn, f"{function_arn}:{qualifier}"] if qualifier else [function_arn]
    decisions = [evaluate(AuthzRequest("lambda:InvokeFunction", arn, S3_SERVICE, resource_account=owner,
                                       context=context), (), resource_policy=parsed) for arn in arns]
    if any(decision.verdict is Verdict.EXPLICIT_DENY for decision in decisions):
        return False
    return any(decision.allowed for decision in decisions)


class S3EventController:
    name = "lambda-s3-events"
    interval = 0.5

    def __init__(self, provider: Any) -> None:
        self.provider = provider
        self._table_exists: bool | None = None

    async def reconcile(self) -> None:
        db = self.provider.db
        if not self._table_exists:
            self._table_exists = await db.read(lambda conn: sa.inspect(conn).has_table("s3_event_outbox"))
            if not self._table_exists:
                return  # S3 does not write events on this installation yet
        rows = await db.read(lambda conn: conn.execute(
            sa.select(s3_event_outbox).order_by(s3_event_outbox.c.id).limit(100)).all())
        for row in rows:
            try:
                await self._deliver(row)
            except Exception:
                log.exception("delivering S3 event %s failed", row.id)
                continue
            await db.write(lambda conn, i=row.id: conn.execute(
                s3_event_outbox.delete().where(s3_event_outbox.c.id == i)))

    async def _deliver(self, row: Any) -> None:
        ref = model.parse_function_name(row.function_arn)
        account = ref.account_id or row.account_id
        region = ref.region or row.region
        function = await self.provider.db.read(lambda conn: model.get_function(conn, account, region, ref.name))
        if function is None:
            log.info("S3 event for a missing function %s dropped", row.function_arn)
            return
        if not s3_may_invoke(function.policy, row.bucket, row.account_id, ref.qualifier, function.arn):
            log.info("S3 event for %s dropped: its resource policy does not allow s3.amazonaws.com", function.arn)
            return
        payload = row.event_json.encode() if isinstance(row.event_json, str) else bytes(row.event_json)
        await self.provider.enqueue(function, ref.qualifier or "", payload)
