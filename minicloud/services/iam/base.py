"""What every part of the IAM provider shares: storage access with cache invalidation,
authorization of an operation on an entity, pagination, policy documents, shapes of results.

The provider is one class (``IamProvider``) assembled from one mixin per resource
(``users.py``, ``groups.py``, ...); each mixin derives from :class:`IamBase`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote

import sqlalchemy as sa

from minicloud.aws.context import RequestContext
from minicloud.aws.errors import ValidationError
from minicloud.aws.pagination import decode_token, encode_token
from minicloud.aws.provider import Provider
from minicloud.iam import aws_managed, store
from minicloud.iam.evaluator import IamEvaluator
from minicloud.iam.identity import PrincipalKind
from minicloud.iam.policy import PolicyKind, policy_size
from minicloud.iam.tables import iam_tags
from minicloud.runtime import Runtime
from minicloud.services.iam.errors import ConcurrentModification, InvalidInput, LimitExceeded, NoSuchEntity
from minicloud.storage.metadata.prepared import Prepared, PreparedRow

T = TypeVar("T")
Params = dict[str, Any]
Result = dict[str, Any]
Context = dict[str, str | list[str]]

DEFAULT_MAX_ITEMS = 100


class IamBase(Provider):
    service_name = "iam"
    global_service = True

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.evaluator = IamEvaluator(runtime.db)

    # -- storage -------------------------------------------------------------------------------
    async def read(self, fn: Callable[[sa.Connection], T]) -> T:
        return await self.runtime.db.read(fn)

    async def path_page(self, listing: PathListing, account_id: str, prefix: str,
                        params: Params) -> tuple[list[PreparedRow], str | None]:
        """One page of a List* call; the same page is served from memory until the next commit."""
        key = (listing, account_id, prefix, params.get("MaxItems"), params.get("Marker"))
        return await self.runtime.db.read_cached(key, lambda conn: listing.page(conn, account_id, prefix, params))

    async def write(self, fn: Callable[[sa.Connection], T]) -> T:
        """Run ``fn`` in a write transaction, then forget every cached policy and credential."""
        try:
            return await self.runtime.db.write(fn)
        except sa.exc.IntegrityError as exc:
            raise ConcurrentModification(
                "The request was rejected because multiple requests to change this object were "
                "submitted simultaneously. Wait a few minutes and submit your request again.") from exc
        finally:
            self.evaluator.invalidate()
            self.runtime.credentials.invalidate()

    # -- policy documents ----------------------------------------------------------------------
    def check_document(self, text: str, kind: PolicyKind = PolicyKind.IDENTITY) -> None:
        """Raise MalformedPolicyDocument (with IAM's sentence) unless ``text`` is a valid policy."""
        self.evaluator.compile(text, kind)


# --- helpers used by the mixins -------------------------------------------------------------------


def caller_user_id(ctx: RequestContext) -> str | None:
    """The IAM user id of the caller, when the caller is an IAM user."""
    return ctx.principal.user_id if ctx.principal.kind is PrincipalKind.USER else None


def non_user_caller() -> ValidationError:
    return ValidationError("Must specify userName when calling with non-User credentials")


def encode_document(text: str) -> str:
    """IAM returns policy documents URL-encoded (RFC 3986); SDKs decode them."""
    return quote(text, safe="-_.~")


def check_size(text: str, limit: int, error: Callable[[], LimitExceeded]) -> None:
    if policy_size(text) > limit:
        raise error()


def not_found(kind: str, name: str) -> NoSuchEntity:
    return NoSuchEntity(f"The {kind} with name {name} cannot be found.")


def policy_not_attachable(arn: str) -> NoSuchEntity:
    return NoSuchEntity(f"Policy {arn} does not exist or is not attachable.")


def check_policy_arn(arn: str) -> None:
    """A managed policy's ARN must at least look like one (AWS answers InvalidInput otherwise)."""
    if not aws_managed.is_aws_managed(arn) and store.split_arn(arn, "policy") is None:
        raise InvalidInput(f"ARN {arn} is not valid.")


def check_attachable(conn: sa.Connection, account_id: str, arn: str) -> None:
    """A policy to attach (or use as a permissions boundary) must be an AWS-managed policy or a
    customer-managed policy of the caller's account."""
    if aws_managed.get(arn) is None and store.get_managed_policy(conn, account_id, arn) is None:
        raise policy_not_attachable(arn)


def tag_list(tags: Sequence[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags]


def tags_of(conn: sa.Connection, resource_type: str, resource_id: str) -> list[tuple[str, str]]:
    return store.get_tags(conn, resource_type, resource_id)


def resource_tag_context(tags: Sequence[tuple[str, str]]) -> Context:
    """``aws:ResourceTag/k`` and ``iam:ResourceTag/k`` of an existing user or role."""
    context: Context = {}
    for key, value in tags:
        context[f"aws:ResourceTag/{key}"] = value
        context[f"iam:ResourceTag/{key}"] = value
    return context


def request_tag_context(tags: Sequence[Mapping[str, str]] | None) -> Context:
    """``aws:RequestTag/k`` and ``aws:TagKeys`` of a request that carries tags."""
    if not tags:
        return {}
    context: Context = {f"aws:RequestTag/{t['Key']}": t["Value"] for t in tags}
    context["aws:TagKeys"] = [t["Key"] for t in tags]
    return context


def count(conn: sa.Connection, table: sa.Table, *where: sa.ColumnElement[bool]) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar_one())


def delete_tags(conn: sa.Connection, resource_type: str, resource_id: str) -> None:
    conn.execute(iam_tags.delete().where(iam_tags.c.resource_type == resource_type,
                                         iam_tags.c.resource_id == resource_id))


def path_filter(column: sa.ColumnElement[str], prefix: str | None) -> sa.ColumnElement[bool]:
    return column.startswith(prefix or "/", autoescape=True)


# --- pagination (Marker / MaxItems / IsTruncated) ---------------------------------------------------


def _after(params: Params) -> str | None:
    marker = params.get("Marker")
    if marker is None:
        return None
    position = decode_token(marker)
    after = position.get("after") if position else None
    if not isinstance(after, str):
        raise ValidationError("Invalid Marker.")
    return after


def page_query(conn: sa.Connection, query: sa.Select[Any], key: sa.ColumnElement[str],
               params: Params) -> tuple[list[sa.Row[Any]], str | None]:
    """One page of ``query`` ordered by the unique ``key``; returns (rows, next marker)."""
    limit = int(params.get("MaxItems") or DEFAULT_MAX_ITEMS)
    after = _after(params)
    if after is not None:
        query = query.where(key > after)
    rows = list(conn.execute(query.order_by(key).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_token({"after": rows[-1]._mapping[key]})


class PathListing:
    """One page of an entity table (users, groups, roles) by account and path prefix, ordered by
    name: the same as ``page_query`` over ``path_filter``, with its statements built once (a
    listing is a hot read; building a statement cost more than running it). The prefix is compared
    with ``substr``, not ``LIKE``: SQLite re-prepares a statement whose LIKE pattern is a bound
    parameter at every execution, which cost more than the query itself; and every path starts with
    "/", so the usual prefix "/" needs no condition at all."""

    def __init__(self, table: sa.Table) -> None:
        key = table.c.name_key
        in_account = sa.select(table).where(table.c.account_id == sa.bindparam("account"))
        prefix: sa.BindParameter[str] = sa.bindparam("path")
        under = in_account.where(sa.func.substr(table.c.path, 1, sa.func.length(prefix)) == prefix)
        after = key > sa.bindparam("after")
        limit: sa.BindParameter[int] = sa.bindparam("limit")
        self._statements = {
            (False, False): Prepared(in_account.order_by(key).limit(limit)),
            (False, True): Prepared(in_account.where(after).order_by(key).limit(limit)),
            (True, False): Prepared(under.order_by(key).limit(limit)),
            (True, True): Prepared(under.where(after).order_by(key).limit(limit)),
        }

    def page(self, conn: sa.Connection, account_id: str, prefix: str,
             params: Params) -> tuple[list[PreparedRow], str | None]:
        limit = int(params.get("MaxItems") or DEFAULT_MAX_ITEMS)
        after = _after(params)
        binds: dict[str, Any] = {"account": account_id, "limit": limit + 1}
        filtered = prefix != "/"
        if filtered:
            binds["path"] = prefix
        if after is not None:
            binds["after"] = after
        rows = self._statements[filtered, after is not None].rows(conn, binds)
        if len(rows) <= limit:
            return rows, None
        rows = rows[:limit]
        return rows, encode_token({"after": rows[-1]._mapping["name_key"]})


def page_list(items: Sequence[T], key: Callable[[T], str], params: Params) -> tuple[list[T], str | None]:
    """One page of an in-memory list (sorted here by the unique ``key``)."""
    limit = int(params.get("MaxItems") or DEFAULT_MAX_ITEMS)
    after = _after(params)
    ordered = sorted(items, key=key)
    if after is not None:
        ordered = [item for item in ordered if key(item) > after]
    if len(ordered) <= limit:
        return ordered, None
    chosen = ordered[:limit]
    return chosen, encode_token({"after": key(chosen[-1])})


def paged(name: str, items: list[Any], marker: str | None) -> Result:
    result: Result = {name: items, "IsTruncated": marker is not None}
    if marker is not None:
        result["Marker"] = marker
    return result


# --- result shapes ------------------------------------------------------------------------------


def boundary_shape(arn: str | None) -> dict[str, str] | None:
    if arn is None:
        return None
    return {"PermissionsBoundaryType": "PermissionsBoundaryPolicy", "PermissionsBoundaryArn": arn}


def user_shape(user: store.UserRecord, *, tags: Sequence[tuple[str, str]] | None = None,
               full: bool = False) -> Result:
    shape: Result = {"Path": user.path, "UserName": user.name, "UserId": user.user_id, "Arn": user.arn,
                     "CreateDate": user.created_at}
    if user.password_last_used is not None:
        shape["PasswordLastUsed"] = user.password_last_used
    if full and user.permissions_boundary:
        shape["PermissionsBoundary"] = boundary_shape(user.permissions_boundary)
    if tags:
        shape["Tags"] = tag_list(tags)
    return shape


def group_shape(group: store.GroupRecord) -> Result:
    return {"Path": group.path, "GroupName": group.name, "GroupId": group.group_id, "Arn": group.arn,
            "CreateDate": group.created_at}


def role_shape(role: store.RoleRecord, *, tags: Sequence[tuple[str, str]] | None = None,
               full: bool = False) -> Result:
    shape: Result = {
        "Path": role.path, "RoleName": role.name, "RoleId": role.role_id, "Arn": role.arn,
        "CreateDate": role.created_at,
        "AssumeRolePolicyDocument": encode_document(role.assume_role_policy),
        "MaxSessionDuration": role.max_session_duration,
    }
    if role.description is not None:
        shape["Description"] = role.description
    if full:
        if role.permissions_boundary:
            shape["PermissionsBoundary"] = boundary_shape(role.permissions_boundary)
        last_used: Result = {}
        if role.last_used_at is not None:
            last_used = {"LastUsedDate": role.last_used_at, "Region": role.last_used_region}
        shape["RoleLastUsed"] = last_used
    if tags:
        shape["Tags"] = tag_list(tags)
    return shape


def version_shape(version_id: str, document: str | None, default: bool, created_at: datetime) -> Result:
    shape: Result = {"VersionId": version_id, "IsDefaultVersion": default, "CreateDate": created_at}
    if document is not None:
        shape["Document"] = encode_document(document)
    return shape
