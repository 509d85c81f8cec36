"""S3 event notifications: S3 writes a row into ``s3_event_outbox`` in the same transaction as the
object's commit; this controller delivers each as an asynchronous invocation, once the function's
resource policy allows ``s3.amazonaws.com`` (with its SourceArn / SourceAccount conditions), and
deletes the row. Events for a missing function, or one whose policy does not allow S3, are dropped
(S3 would have refused the notification configuration; AWS drops such deliveries too).
"""

from __future__ import annotations

import fnmatch
import logging
from typing import Any

import sqlalchemy as sa

from minicloud.services.lambda_ import model
from minicloud.services.lambda_.tables import s3_event_outbox

log = logging.getLogger("minicloud.lambda")


def s3_may_invoke(policy: dict[str, Any] | None, bucket: str, account_id: str, qualifier: str | None) -> bool:
    for statement in (policy or {}).get("Statement") or []:
        if statement.get("Effect") != "Allow":
            continue
        principal = statement.get("Principal")
        services = principal.get("Service") if isinstance(principal, dict) else principal
        services = [services] if isinstance(services, str) else services or []
        if "s3.amazonaws.com" not in services and "*" not in services:
            continue
        actions = statement.get("Action")
        actions = [actions] if isinstance(actions, str) else actions or []
        if not any(a in ("lambda:InvokeFunction", "lambda:*", "*") for a in actions):
            continue
        resource = str(statement.get("Resource") or "")
        if qualifier and not resource.endswith(f":{qualifier}") and resource.count(":") > 6:
            continue
        if _conditions_hold(statement.get("Condition") or {}, bucket, account_id):
            return True
    return False


def _conditions_hold(condition: dict[str, dict[str, Any]], bucket: str, account_id: str) -> bool:
    facts = {"aws:sourcearn": f"arn:aws:s3:::{bucket}", "aws:sourceaccount": account_id}
    for operator, pairs in condition.items():
        for key, expected in pairs.items():
            actual = facts.get(key.lower())
            if actual is None:
                return False
            values = expected if isinstance(expected, list) else [expected]
            if operator.startswith("Arn") or operator == "StringLike":
                if not any(fnmatch.fnmatchcase(actual, str(v)) for v in values):
                    return False
            elif actual not in [str(v) for v in values]:
                return False
    return True


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
        if not s3_may_invoke(function.policy, row.bucket, row.account_id, ref.qualifier):
            log.info("S3 event for %s dropped: its resource policy does not allow s3.amazonaws.com", function.arn)
            return
        payload = row.event_json.encode() if isinstance(row.event_json, str) else bytes(row.event_json)
        await self.provider.enqueue(function, ref.qualifier or "", payload)
