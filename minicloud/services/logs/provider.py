"""Amazon CloudWatch Logs: log groups (with retention, enforced by a controller), streams, events.

FilterLogEvents understands the plain-text pattern syntax: terms that must all appear (``ERROR
timeout``), quoted phrases, ``?term`` alternatives and ``-term`` exclusions; JSON and space-delimited
patterns answer InvalidParameterException (not implemented).
"""

from __future__ import annotations

import itertools
import json
import re
import shlex
import time
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from minicloud.aws.context import RequestContext
from minicloud.aws.pagination import decode_token, encode_token
from minicloud.aws.provider import Provider
from minicloud.runtime import Runtime
from minicloud.services.logs import store
from minicloud.services.logs.errors import (
    AccessDeniedException,
    InvalidParameterException,
    ResourceAlreadyExistsException,
    ResourceNotFoundException,
)
from minicloud.services.logs.tables import logs_events, logs_groups, logs_streams

RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                  3288, 3653)
GROUP_NAME = re.compile(r"^[\.\-_/#A-Za-z0-9]{1,512}$")
STREAM_NAME = re.compile(r"^[^:*]{1,512}$")
MAX_BATCH_BYTES = 1_048_576
MAX_BATCH_EVENTS = 10_000
DAY_MS = 86_400_000


class RetentionController:
    name = "logs-retention"
    interval = 60.0

    def __init__(self, runtime: Runtime) -> None:
        self.db = runtime.db

    async def reconcile(self) -> None:
        now = int(time.time() * 1000)
        await self.db.write(lambda conn: store.expire(conn, now))


class LogsProvider(Provider):
    service_name = "logs"
    access_denied = AccessDeniedException

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.db = runtime.db
        self.writer: store.LogWriter | None = None
        runtime.controllers.append(RetentionController(runtime))

    async def start(self) -> None:
        self.writer = store.LogWriter(self.db)

    async def stop(self) -> None:
        if self.writer is not None:
            await self.writer.close()

    # -- helpers ---------------------------------------------------------------------------------
    @staticmethod
    def group_arn(ctx: RequestContext, name: str) -> str:
        return f"arn:aws:logs:{ctx.region}:{ctx.account_id}:log-group:{name}"

    async def _group(self, ctx: RequestContext, params: dict[str, Any], action: str) -> store.Group:
        name = _group_name(params)
        await ctx.authorize(action, self.group_arn(ctx, name) + ":*")
        group = await self.db.read(lambda conn: store.get_group(conn, ctx.account_id, ctx.region, name))
        if group is None:
            raise ResourceNotFoundException("The specified log group does not exist.")
        return group

    # -- groups ----------------------------------------------------------------------------------
    async def create_log_group(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name: str = params["logGroupName"]
        await ctx.authorize("logs:CreateLogGroup", self.group_arn(ctx, name) + ":*")
        if not GROUP_NAME.match(name):
            raise InvalidParameterException(f"1 validation error detected: Value '{name}' at 'logGroupName' failed "
                                            "to satisfy constraint: Member must satisfy regular expression "
                                            "pattern: [\\.\\-_/#A-Za-z0-9]+")
        tags = json.dumps(params.get("tags") or {})

        def create(conn: sa.Connection) -> bool:
            if store.get_group(conn, ctx.account_id, ctx.region, name) is not None:
                return False
            store.create_group(conn, ctx.account_id, ctx.region, name, tags)
            return True

        if not await self.db.write(create):
            raise ResourceAlreadyExistsException("The specified log group already exists")
        return {}

    async def delete_log_group(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        group = await self._group(ctx, params, "logs:DeleteLogGroup")

        def delete(conn: sa.Connection) -> None:
            conn.execute(logs_events.delete().where(logs_events.c.group_id == group.id))
            conn.execute(logs_streams.delete().where(logs_streams.c.group_id == group.id))
            conn.execute(logs_groups.delete().where(logs_groups.c.id == group.id))

        await self.db.write(delete)
        return {}

    async def put_retention_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        group = await self._group(ctx, params, "logs:PutRetentionPolicy")
        days = params["retentionInDays"]
        if days not in RETENTION_DAYS:
            raise InvalidParameterException(f"1 validation error detected: Value '{days}' at 'retentionInDays' "
                                            "failed to satisfy constraint: Member must satisfy enum value set: "
                                            f"[{', '.join(map(str, RETENTION_DAYS))}]")
        await self.db.write(lambda conn: conn.execute(
            logs_groups.update().where(logs_groups.c.id == group.id).values(retention_days=days)))
        return {}

    async def delete_retention_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        group = await self._group(ctx, params, "logs:DeleteRetentionPolicy")
        await self.db.write(lambda conn: conn.execute(
            logs_groups.update().where(logs_groups.c.id == group.id).values(retention_days=None)))
        return {}

    async def describe_log_groups(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await ctx.authorize("logs:DescribeLogGroups", f"arn:aws:logs:{ctx.region}:{ctx.account_id}:log-group:*")
        prefix = params.get("logGroupNamePrefix") or ""
        pattern = params.get("logGroupNamePattern")
        if prefix and pattern:
            raise InvalidParameterException("LogGroup name prefix and LogGroup name pattern are mutually exclusive "
                                            "parameters.")
        limit = _limit(params, 50)
        after = _token(params)
        c = logs_groups.c
        query = sa.select(logs_groups, _group_bytes()).where(c.account_id == ctx.account_id, c.region == ctx.region)
        if prefix:
            query = query.where(c.name.startswith(prefix, autoescape=True))
        if after is not None:
            query = query.where(c.name > str(after))
        rows = await self.db.read(lambda conn: conn.execute(query.order_by(c.name).limit(limit + 1)).all())
        if pattern:
            rows = [r for r in rows if pattern.lower() in r.name.lower()]
        groups = []
        for row in rows[:limit]:
            group = store.Group(row.id, row.account_id, row.region, row.name, row.created_at, row.retention_days)
            item: dict[str, Any] = {
                "logGroupName": row.name, "creationTime": int(row.created_at.timestamp() * 1000),
                "metricFilterCount": 0, "arn": group.arn + ":*", "logGroupArn": group.arn,
                "storedBytes": int(row.stored or 0), "logGroupClass": "STANDARD",
            }
            if row.retention_days is not None:
                item["retentionInDays"] = row.retention_days
            groups.append(item)
        result: dict[str, Any] = {"logGroups": groups}
        if len(rows) > limit:
            result["nextToken"] = encode_token({"after": rows[limit - 1].name})
        return result

    # -- streams ---------------------------------------------------------------------------------
    async def create_log_stream(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        group = await self._group(ctx, params, "logs:CreateLogStream")
        name: str = params["logStreamName"]
        if not STREAM_NAME.match(name):
            raise InvalidParameterException(f"1 validation error detected: Value '{name}' at 'logStreamName' failed "
                                            "to satisfy constraint: Member must satisfy regular expression "
                                            "pattern: [^:*]*")

        def create(conn: sa.Connection) -> bool:
            if store.stream_id(conn, group.id, name, False) is not None:
                return False
            store.stream_id(conn, group.id, name, True)
            return True

        if not await self.db.write(create):
            raise ResourceAlreadyExistsException("The specified log stream already exists")
        return {}

    async def delete_log_stream(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        group = await self._group(ctx, params, "logs:DeleteLogStream")
        name = params["logStreamName"]

        def delete(conn: sa.Connection) -> bool:
            stream = store.stream_id(conn, group.id, name, False)
            if stream is None:
                return False
            conn.execute(logs_events.delete().where(logs_events.c.stream_id == stream))
            conn.execute(logs_streams.delete().where(logs_streams.c.id == stream))
            return True

        if not await self.db.write(delete):
            raise ResourceNotFoundException("The specified log stream does not exist.")
        return {}

    async def describe_log_streams(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        group = await self._group(ctx, params, "logs:DescribeLogStreams")
        prefix = params.get("logStreamNamePrefix") or ""
        order = params.get("orderBy") or "LogStreamName"
        if prefix and order == "LastEventTime":
            raise InvalidParameterException("Cannot order by LastEventTime with a logStreamNamePrefix.")
        descending = bool(params.get("descending"))
        limit = _limit(params, 50)
        offset = int(str(_token(params) or 0))
        c = logs_streams.c
        query = sa.select(logs_streams).where(c.group_id == group.id)
        if prefix:
            query = query.where(c.name.startswith(prefix, autoescape=True))
        key = c.name if order == "LogStreamName" else sa.func.coalesce(c.last_event, 0)
        query = query.order_by(key.desc() if descending else key.asc(), c.id).offset(offset).limit(limit + 1)
        rows = await self.db.read(lambda conn: conn.execute(query).all())
        streams = []
        for row in rows[:limit]:
            item: dict[str, Any] = {
                "logStreamName": row.name, "creationTime": int(row.created_at.timestamp() * 1000),
                "arn": f"{group.arn}:log-stream:{row.name}", "storedBytes": 0,
            }
            if row.first_event is not None:
                item.update(firstEventTimestamp=row.first_event, lastEventTimestamp=row.last_event,
                            lastIngestionTime=row.last_ingestion)
            streams.append(item)
        result: dict[str, Any] = {"logStreams": streams}
        if len(rows) > limit:
            result["nextToken"] = encode_token({"after": offset + limit})
        return result

    # -- events ----------------------------------------------------------------------------------
    async def put_log_events(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        group = await self._group(ctx, params, "logs:PutLogEvents")
        events = [(int(e["timestamp"]), str(e["message"])) for e in params["logEvents"]]
        if not events or len(events) > MAX_BATCH_EVENTS:
            raise InvalidParameterException(f"A batch holds 1 to {MAX_BATCH_EVENTS} log events.")
        if sum(len(m.encode()) + store.EVENT_OVERHEAD for _, m in events) > MAX_BATCH_BYTES:
            raise InvalidParameterException("Upload too large: batch size exceeds the maximum of 1048576 bytes.")
        if any(b[0] < a[0] for a, b in itertools.pairwise(events)):
            raise InvalidParameterException("Log events in a single PutLogEvents request must be in chronological "
                                            "order.")
        if events[-1][0] - events[0][0] > DAY_MS:
            raise InvalidParameterException("The batch of log events in a single PutLogEvents request cannot span "
                                            "more than 24 hours.")
        now = int(time.time() * 1000)
        too_new = next((i for i, (ts, _) in enumerate(events) if ts > now + 2 * 3_600_000), None)
        too_old = max((i for i, (ts, _) in enumerate(events) if ts < now - 14 * DAY_MS), default=None)
        expired = None
        if group.retention_days is not None:
            expired = max((i for i, (ts, _) in enumerate(events) if ts < now - group.retention_days * DAY_MS),
                          default=None)
        start = max(i for i in (too_old, expired, -1) if i is not None) + 1
        end = too_new if too_new is not None else len(events)
        accepted = events[start:end]
        name = params["logStreamName"]

        def put(conn: sa.Connection) -> bool:
            stream = store.stream_id(conn, group.id, name, False)
            if stream is None:
                return False
            store.append_events(conn, group.id, stream, accepted)
            return True

        if not await self.db.write(put):
            raise ResourceNotFoundException("The specified log stream does not exist.")
        result: dict[str, Any] = {"nextSequenceToken": f"{now:056d}"}
        rejected: dict[str, int] = {}
        if too_new is not None:
            rejected["tooNewLogEventStartIndex"] = too_new
        if too_old is not None:
            rejected["tooOldLogEventEndIndex"] = too_old
        if expired is not None:
            rejected["expiredLogEventEndIndex"] = expired
        if rejected:
            result["rejectedLogEventsInfo"] = rejected
        return result

    async def get_log_events(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        group = await self._group(ctx, params, "logs:GetLogEvents")
        name = params["logStreamName"]
        stream = await self.db.read(lambda conn: store.stream_id(conn, group.id, name, False))
        if stream is None:
            raise ResourceNotFoundException("The specified log stream does not exist.")
        limit = _limit(params, 10_000)
        token = params.get("nextToken")
        position = _event_token(token) if token else None
        forward = position[0] == "f" if position else bool(params.get("startFromHead"))
        c = logs_events.c
        query = sa.select(c.id, c.timestamp, c.message, c.ingestion_time).where(c.stream_id == stream)
        query = _time_window(query, params)
        if position is not None:
            query = query.where(c.id > position[1] if forward else c.id < position[1])
        query = query.order_by(c.timestamp.asc(), c.id.asc()) if forward else \
            query.order_by(c.timestamp.desc(), c.id.desc())
        rows = await self.db.read(lambda conn: conn.execute(query.limit(limit)).all())
        if not forward:
            rows = rows[::-1]
        events = [{"timestamp": r.timestamp, "message": r.message, "ingestionTime": r.ingestion_time} for r in rows]
        last = rows[-1].id if rows else (position[1] if position else 0)
        first = rows[0].id if rows else (position[1] if position else 0)
        return {"events": events, "nextForwardToken": f"f/{last:056d}", "nextBackwardToken": f"b/{first:056d}"}

    async def filter_log_events(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        group = await self._group(ctx, params, "logs:FilterLogEvents")
        names = params.get("logStreamNames")
        prefix = params.get("logStreamNamePrefix")
        if names and prefix:
            raise InvalidParameterException("logStreamNames and logStreamNamePrefix are mutually exclusive.")
        matcher = compile_pattern(params.get("filterPattern") or "")
        limit = _limit(params, 10_000)
        after = int(str(_token(params) or 0))
        c, s = logs_events.c, logs_streams.c
        query = sa.select(c.id, c.timestamp, c.message, c.ingestion_time, s.name.label("stream")) \
            .join(logs_streams, s.id == c.stream_id).where(c.group_id == group.id, c.id > after)
        if names:
            query = query.where(s.name.in_(names))
        if prefix:
            query = query.where(s.name.startswith(prefix, autoescape=True))
        query = _time_window(query, params).order_by(c.id)
        events: list[dict[str, Any]] = []
        last_id = after
        rows = await self.db.read(lambda conn: conn.execute(query).all())
        more = False
        for row in rows:
            if len(events) >= limit:
                more = True
                break
            last_id = row.id
            if matcher(row.message):
                events.append({"logStreamName": row.stream, "timestamp": row.timestamp, "message": row.message,
                               "ingestionTime": row.ingestion_time, "eventId": f"{row.id:056d}"})
        events.sort(key=lambda e: (e["timestamp"], e["eventId"]))
        result: dict[str, Any] = {"events": events, "searchedLogStreams": []}
        if more:
            result["nextToken"] = encode_token({"after": last_id})
        return result


def _group_name(params: dict[str, Any]) -> str:
    name = params.get("logGroupName") or params.get("logGroupIdentifier")
    if not name:
        raise InvalidParameterException("Either logGroupName or logGroupIdentifier must be provided.")
    if name.startswith("arn:"):
        name = name.split(":log-group:", 1)[-1].removesuffix(":*")
    return str(name)


def _group_bytes() -> sa.ScalarSelect[Any]:
    return sa.select(sa.func.coalesce(sa.func.sum(logs_streams.c.stored_bytes), 0)) \
        .where(logs_streams.c.group_id == logs_groups.c.id).scalar_subquery().label("stored")  # type: ignore[return-value]


def _limit(params: dict[str, Any], maximum: int) -> int:
    limit = params.get("limit")
    if limit is None:
        return maximum
    if not 1 <= int(limit) <= maximum:
        raise InvalidParameterException(f"1 validation error detected: Value '{limit}' at 'limit' failed to "
                                        f"satisfy constraint: Member must have value less than or equal to {maximum}")
    return int(limit)


def _token(params: dict[str, Any]) -> object | None:
    token = params.get("nextToken")
    if not token:
        return None
    position = decode_token(token)
    if position is None or "after" not in position:
        raise InvalidParameterException("The specified nextToken is invalid.")
    return position["after"]


def _event_token(token: str) -> tuple[str, int]:
    direction, _, number = token.partition("/")
    if direction not in ("f", "b") or not number.isdigit():
        raise InvalidParameterException("The specified nextToken is invalid.")
    return direction, int(number)


def _time_window(query: Any, params: dict[str, Any]) -> Any:
    if params.get("startTime") is not None:
        query = query.where(logs_events.c.timestamp >= int(params["startTime"]))
    if params.get("endTime") is not None:
        query = query.where(logs_events.c.timestamp <= int(params["endTime"]))
    return query


def compile_pattern(pattern: str) -> Any:
    """A predicate for CloudWatch Logs' plain-text filter pattern syntax."""
    pattern = pattern.strip()
    if not pattern or pattern == '""':
        return lambda message: True
    if pattern.startswith(("{", "[")):
        raise InvalidParameterException("JSON and space-delimited filter patterns are not implemented by minicloud.")
    try:
        terms = shlex.split(pattern)
    except ValueError:
        raise InvalidParameterException("Invalid character(s) in term") from None
    required = [t for t in terms if not t.startswith(("?", "-"))]
    optional = [t[1:] for t in terms if t.startswith("?") and len(t) > 1]
    excluded = [t[1:] for t in terms if t.startswith("-") and len(t) > 1]

    def match(message: str) -> bool:
        if any(t in message for t in excluded):
            return False
        if optional and not required:
            return any(t in message for t in optional)
        return all(t in message for t in required)
    return match


def utc_ms(moment: datetime) -> int:
    return int(moment.astimezone(UTC).timestamp() * 1000)
