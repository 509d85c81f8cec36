"""Managed policies: Create/Get/List/DeletePolicy, versions, policy tags.

Customer-managed policies live in ``iam_policies``/``iam_policy_versions``; AWS-managed ones come
from ``minicloud.iam.aws_managed`` and are read-only (writing to them is a cross-account request
to the ``aws`` account, which IAM refuses with AccessDenied).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from minicloud.aws.context import RequestContext
from minicloud.iam import aws_managed, ids, store
from minicloud.iam.policy import MANAGED_POLICY_MAX
from minicloud.iam.tables import (
    POLICY,
    iam_attachments,
    iam_policies,
    iam_policy_versions,
    iam_roles,
    iam_users,
)
from minicloud.services.iam.base import (
    Params,
    Result,
    check_size,
    count,
    delete_tags,
    page_list,
    paged,
    request_tag_context,
    tag_list,
    version_shape,
)
from minicloud.services.iam.errors import (
    DeleteConflict,
    EntityAlreadyExists,
    InvalidInput,
    LimitExceeded,
    NoSuchEntity,
    quota,
)
from minicloud.services.iam.roles import RolesMixin
from minicloud.services.iam.tags import (
    add_tags,
    check_new_tags,
    remove_tags,
    replace_tags,
    tags_page,
    untag_context,
)

POLICIES_QUOTA = 1500
VERSIONS_PER_POLICY = 5

_P = iam_policies.c
_V = iam_policy_versions.c


@dataclass(frozen=True, slots=True)
class PolicyView:
    """A managed policy, AWS's or the account's, as the operations see it."""

    arn: str
    name: str
    path: str
    policy_id: str
    default_version: str
    created_at: datetime
    updated_at: datetime
    description: str | None
    aws: bool

    @classmethod
    def of_aws(cls, p: aws_managed.AwsManagedPolicy) -> PolicyView:
        return cls(p.arn, p.name, p.path, p.policy_id, p.version_id, p.created_at, p.updated_at,
                   p.description, True)

    @classmethod
    def of_record(cls, r: store.ManagedPolicyRecord) -> PolicyView:
        return cls(r.arn, r.name, r.path, r.policy_id, r.default_version, r.created_at, r.updated_at,
                   r.description, False)


def policy_shape(view: PolicyView, attachments: int, boundaries: int, *,
                 tags: Sequence[tuple[str, str]] | None = None, full: bool = False) -> Result:
    shape: Result = {
        "PolicyName": view.name, "PolicyId": view.policy_id, "Arn": view.arn, "Path": view.path,
        "DefaultVersionId": view.default_version, "AttachmentCount": attachments,
        "PermissionsBoundaryUsageCount": boundaries, "IsAttachable": True,
        "CreateDate": view.created_at, "UpdateDate": view.updated_at,
    }
    if full and view.description:
        shape["Description"] = view.description
    if tags:
        shape["Tags"] = tag_list(tags)
    return shape


def usage_counts(conn: sa.Connection, account_id: str, arns: Sequence[str] | None = None
                 ) -> tuple[dict[str, int], dict[str, int]]:
    """(attachments, permissions-boundary uses) per policy ARN, within one account."""
    query = (sa.select(iam_attachments.c.policy_arn, sa.func.count())
             .where(iam_attachments.c.account_id == account_id).group_by(iam_attachments.c.policy_arn))
    if arns is not None:
        query = query.where(iam_attachments.c.policy_arn.in_(arns))
    attachments = {arn: int(n) for arn, n in conn.execute(query)}
    boundaries: dict[str, int] = {}
    for table in (iam_users, iam_roles):
        column = table.c.permissions_boundary
        rows = conn.execute(sa.select(column, sa.func.count()).where(
            table.c.account_id == account_id, column.is_not(None)).group_by(column))
        for arn, n in rows:
            boundaries[arn] = boundaries.get(arn, 0) + int(n)
    return attachments, boundaries


def version_number(version_id: str) -> int:
    return int(version_id[1:].split(".")[0])


def _version_not_found(arn: str, version_id: str) -> NoSuchEntity:
    return NoSuchEntity(f"Policy {arn} version {version_id} does not exist or is not attachable.")


class PoliciesMixin(RolesMixin):
    async def authorize_policy(self, ctx: RequestContext, action: str, arn: str, *, write: bool = False,
                               context: Mapping[str, str | list[str]] | None = None) -> PolicyView:
        """Authorize ``action`` on the policy ``arn`` and return it (NoSuchEntity when missing).
        Writes to AWS-managed policies and anything on another account's policy are requests to
        another account, which IAM policies cannot grant."""
        aws = aws_managed.get(arn)
        parts = store.split_arn(arn, "policy")
        if aws is None and parts is None:
            raise InvalidInput(f"ARN {arn} is not valid.")
        owner = "aws" if aws_managed.is_aws_managed(arn) else (parts[0] if parts else ctx.account_id)
        if owner == "aws" and not write:
            owner = ctx.account_id
        record = None
        if aws is None and owner == ctx.account_id:
            record = await self.read(lambda conn: store.get_managed_policy(conn, ctx.account_id, arn))
        await ctx.authorize(action, arn, context=context, resource_account=owner)
        if aws is not None:
            return PolicyView.of_aws(aws)
        if record is None:
            raise NoSuchEntity(f"Policy {arn} was not found.")
        return PolicyView.of_record(record)

    async def create_policy(self, ctx: RequestContext, params: Params) -> Result:
        name, path = params["PolicyName"], params.get("Path") or "/"
        document = params["PolicyDocument"]
        tags: Sequence[Mapping[str, str]] = params.get("Tags") or []
        arn = store.policy_arn(ctx.account_id, path, name)
        await ctx.authorize("iam:CreatePolicy", arn, context=request_tag_context(tags))
        self.check_document(document)
        check_size(document, MANAGED_POLICY_MAX, lambda: quota("PolicySize", MANAGED_POLICY_MAX))
        check_new_tags([], tags)
        view = PolicyView(arn, name, path, ids.unique_id(ids.MANAGED_POLICY), "v1", ctx.now, ctx.now,
                          params.get("Description"), False)

        def create(conn: sa.Connection) -> None:
            taken = count(conn, iam_policies, iam_policies.c.account_id == ctx.account_id,
                          iam_policies.c.name_key == name.lower())
            if taken:
                raise EntityAlreadyExists(f"A policy called {name} already exists. "
                                          "Duplicate names are not allowed.")
            if count(conn, iam_policies, iam_policies.c.account_id == ctx.account_id) >= POLICIES_QUOTA:
                raise quota("PoliciesPerAccount", POLICIES_QUOTA)
            conn.execute(iam_policies.insert().values(
                policy_id=view.policy_id, account_id=ctx.account_id, name=name, name_key=name.lower(),
                path=path, arn=arn, description=view.description, default_version="v1", next_version=2,
                created_at=ctx.now, updated_at=ctx.now))
            conn.execute(iam_policy_versions.insert().values(
                policy_id=view.policy_id, version_id="v1", document=document, created_at=ctx.now))
            replace_tags(conn, POLICY, view.policy_id, tags)

        await self.write(create)
        return {"Policy": policy_shape(view, 0, 0, tags=[(t["Key"], t["Value"]) for t in tags], full=True)}

    async def get_policy(self, ctx: RequestContext, params: Params) -> Result:
        view = await self.authorize_policy(ctx, "iam:GetPolicy", params["PolicyArn"])

        def load(conn: sa.Connection) -> Result:
            attachments, boundaries = usage_counts(conn, ctx.account_id, [view.arn])
            tags = [] if view.aws else store.get_tags(conn, POLICY, view.policy_id)
            return policy_shape(view, attachments.get(view.arn, 0), boundaries.get(view.arn, 0),
                                tags=tags, full=True)

        return {"Policy": await self.read(load)}

    async def list_policies(self, ctx: RequestContext, params: Params) -> Result:
        await ctx.authorize("iam:ListPolicies", "*")
        scope = params.get("Scope") or "All"
        prefix = params.get("PathPrefix") or "/"
        only_attached = bool(params.get("OnlyAttached"))
        usage = params.get("PolicyUsageFilter")

        def load(conn: sa.Connection) -> tuple[list[PolicyView], dict[str, int], dict[str, int]]:
            views: list[PolicyView] = []
            if scope in ("All", "AWS"):
                views += [PolicyView.of_aws(p) for p in aws_managed.POLICIES]
            if scope in ("All", "Local"):
                rows = conn.execute(sa.select(iam_policies).where(_P.account_id == ctx.account_id))
                views += [PolicyView.of_record(store.policy_from_row(r)) for r in rows]
            attachments, boundaries = usage_counts(conn, ctx.account_id)
            return views, attachments, boundaries

        views, attachments, boundaries = await self.read(load)

        def wanted(view: PolicyView) -> bool:
            if not view.path.startswith(prefix):
                return False
            as_policy, as_boundary = attachments.get(view.arn, 0), boundaries.get(view.arn, 0)
            if usage == "PermissionsPolicy" and only_attached:
                return as_policy > 0
            if usage == "PermissionsBoundary" and only_attached:
                return as_boundary > 0
            return not only_attached or as_policy + as_boundary > 0

        chosen, marker = page_list([v for v in views if wanted(v)], lambda v: f"{v.name.lower()} {v.arn}",
                                   params)
        shapes = [policy_shape(v, attachments.get(v.arn, 0), boundaries.get(v.arn, 0)) for v in chosen]
        return paged("Policies", shapes, marker)

    async def delete_policy(self, ctx: RequestContext, params: Params) -> Result:
        view = await self.authorize_policy(ctx, "iam:DeletePolicy", params["PolicyArn"], write=True)

        def delete(conn: sa.Connection) -> None:
            attachments, boundaries = usage_counts(conn, ctx.account_id, [view.arn])
            if attachments.get(view.arn) or boundaries.get(view.arn):
                raise DeleteConflict("Cannot delete a policy attached to entities.")
            versions = count(conn, iam_policy_versions, iam_policy_versions.c.policy_id == view.policy_id)
            if versions > 1:
                raise DeleteConflict("This policy has more than one version. Before you delete a policy, you "
                                     "must delete the policy's versions. The default version is deleted with "
                                     "the policy.")
            delete_tags(conn, POLICY, view.policy_id)
            conn.execute(iam_policy_versions.delete().where(_V.policy_id == view.policy_id))
            conn.execute(iam_policies.delete().where(iam_policies.c.policy_id == view.policy_id))

        await self.write(delete)
        return {}

    # -- versions ---------------------------------------------------------------------------------
    async def create_policy_version(self, ctx: RequestContext, params: Params) -> Result:
        view = await self.authorize_policy(ctx, "iam:CreatePolicyVersion", params["PolicyArn"], write=True)
        document = params["PolicyDocument"]
        set_default = bool(params.get("SetAsDefault"))
        self.check_document(document)
        check_size(document, MANAGED_POLICY_MAX, lambda: quota("PolicySize", MANAGED_POLICY_MAX))

        def create(conn: sa.Connection) -> str:
            row = conn.execute(sa.select(iam_policies).where(_P.policy_id == view.policy_id)).first()
            if row is None:
                raise NoSuchEntity(f"Policy {view.arn} was not found.")
            versions = count(conn, iam_policy_versions, iam_policy_versions.c.policy_id == view.policy_id)
            if versions >= VERSIONS_PER_POLICY:
                raise LimitExceeded(f"A managed policy can have up to {VERSIONS_PER_POLICY} versions. "
                                    "Before you create a new version, you must delete an existing version.")
            version_id = f"v{row.next_version}"
            conn.execute(iam_policy_versions.insert().values(
                policy_id=view.policy_id, version_id=version_id, document=document, created_at=ctx.now))
            values: dict[str, Any] = {"next_version": row.next_version + 1, "updated_at": ctx.now}
            if set_default:
                values["default_version"] = version_id
            conn.execute(iam_policies.update().where(_P.policy_id == view.policy_id).values(**values))
            return version_id

        version_id = await self.write(create)
        return {"PolicyVersion": version_shape(version_id, None, set_default, ctx.now)}

    async def _versions(self, policy_id: str) -> list[Any]:
        return await self.read(lambda conn: list(conn.execute(
            sa.select(iam_policy_versions).where(iam_policy_versions.c.policy_id == policy_id))))

    async def get_policy_version(self, ctx: RequestContext, params: Params) -> Result:
        view = await self.authorize_policy(ctx, "iam:GetPolicyVersion", params["PolicyArn"])
        version_id = params["VersionId"]
        if view.aws:
            aws = aws_managed.BY_ARN[view.arn]
            if version_id != aws.version_id:
                raise _version_not_found(view.arn, version_id)
            return {"PolicyVersion": version_shape(aws.version_id, aws.document, True, aws.updated_at)}
        for row in await self._versions(view.policy_id):
            if row.version_id == version_id:
                shape = version_shape(row.version_id, row.document, version_id == view.default_version,
                                      row.created_at)
                return {"PolicyVersion": shape}
        raise _version_not_found(view.arn, version_id)

    async def list_policy_versions(self, ctx: RequestContext, params: Params) -> Result:
        view = await self.authorize_policy(ctx, "iam:ListPolicyVersions", params["PolicyArn"])
        if view.aws:
            versions = [(view.default_version, view.updated_at)]
        else:
            versions = [(r.version_id, r.created_at) for r in await self._versions(view.policy_id)]
        chosen, marker = page_list(versions, lambda v: f"{10**9 - version_number(v[0]):010d}", params)
        shapes = [version_shape(v, None, v == view.default_version, created) for v, created in chosen]
        return paged("Versions", shapes, marker)

    async def delete_policy_version(self, ctx: RequestContext, params: Params) -> Result:
        view = await self.authorize_policy(ctx, "iam:DeletePolicyVersion", params["PolicyArn"], write=True)
        version_id = params["VersionId"]

        def delete(conn: sa.Connection) -> None:
            default = conn.execute(sa.select(iam_policies.c.default_version).where(
                iam_policies.c.policy_id == view.policy_id)).scalar()
            if default == version_id:
                raise DeleteConflict("Cannot delete the default version of a policy.")
            deleted = conn.execute(iam_policy_versions.delete().where(
                _V.policy_id == view.policy_id, _V.version_id == version_id))
            if not deleted.rowcount:
                raise _version_not_found(view.arn, version_id)

        await self.write(delete)
        return {}

    async def set_default_policy_version(self, ctx: RequestContext, params: Params) -> Result:
        view = await self.authorize_policy(ctx, "iam:SetDefaultPolicyVersion", params["PolicyArn"],
                                           write=True)
        version_id = params["VersionId"]

        def set_default(conn: sa.Connection) -> None:
            exists = count(conn, iam_policy_versions, iam_policy_versions.c.policy_id == view.policy_id,
                           iam_policy_versions.c.version_id == version_id)
            if not exists:
                raise _version_not_found(view.arn, version_id)
            conn.execute(iam_policies.update().where(iam_policies.c.policy_id == view.policy_id)
                         .values(default_version=version_id))

        await self.write(set_default)
        return {}

    # -- tags -------------------------------------------------------------------------------------
    async def tag_policy(self, ctx: RequestContext, params: Params) -> Result:
        tags = params["Tags"]
        view = await self.authorize_policy(ctx, "iam:TagPolicy", params["PolicyArn"], write=True,
                                           context=request_tag_context(tags))
        await self.write(lambda conn: add_tags(conn, POLICY, view.policy_id, tags))
        return {}

    async def untag_policy(self, ctx: RequestContext, params: Params) -> Result:
        keys = params["TagKeys"]
        view = await self.authorize_policy(ctx, "iam:UntagPolicy", params["PolicyArn"], write=True,
                                           context=untag_context(keys))
        await self.write(lambda conn: remove_tags(conn, POLICY, view.policy_id, keys))
        return {}

    async def list_policy_tags(self, ctx: RequestContext, params: Params) -> Result:
        view = await self.authorize_policy(ctx, "iam:ListPolicyTags", params["PolicyArn"])
        if view.aws:
            return paged("Tags", [], None)
        return await self.read(lambda conn: tags_page(conn, POLICY, view.policy_id, params))
