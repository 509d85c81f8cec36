"""The function's resource policy (AddPermission, RemovePermission, GetPolicy) and tags."""

from __future__ import annotations

import json
import uuid
from typing import Any

import sqlalchemy as sa

from minicloud.aws.context import RequestContext
from minicloud.services.lambda_ import model
from minicloud.services.lambda_.base import LambdaBase
from minicloud.services.lambda_.errors import (
    InvalidParameterValueException,
    PreconditionFailedException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from minicloud.services.lambda_.tables import lambda_functions


def statement_for(params: dict[str, Any], resource: str) -> dict[str, Any]:
    principal = params["Principal"]
    if principal == "*":
        principal_doc: Any = "*"
    elif principal.endswith(".amazonaws.com"):
        principal_doc = {"Service": principal}
    elif principal.isdigit() and len(principal) == 12:
        principal_doc = {"AWS": f"arn:aws:iam::{principal}:root"}
    else:
        principal_doc = {"AWS": principal}
    statement: dict[str, Any] = {"Sid": params["StatementId"], "Effect": "Allow", "Principal": principal_doc,
                                 "Action": params["Action"], "Resource": resource}
    condition: dict[str, dict[str, str]] = {}
    if params.get("SourceArn"):
        condition.setdefault("ArnLike", {})["AWS:SourceArn"] = params["SourceArn"]
    if params.get("SourceAccount"):
        condition.setdefault("StringEquals", {})["AWS:SourceAccount"] = params["SourceAccount"]
    if params.get("PrincipalOrgID"):
        condition.setdefault("StringEquals", {})["aws:PrincipalOrgID"] = params["PrincipalOrgID"]
    if params.get("FunctionUrlAuthType"):
        condition.setdefault("StringEquals", {})["lambda:FunctionUrlAuthType"] = params["FunctionUrlAuthType"]
    if condition:
        statement["Condition"] = condition
    return statement


class PermissionsMixin(LambdaBase):
    async def add_permission(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        function, _version = await self.resolve(ctx, params, "lambda:AddPermission")
        action = params["Action"]
        if not (action.startswith("lambda:") or action == "*"):
            raise InvalidParameterValueException("1 validation error detected: Value at 'action' failed to satisfy "
                                                 "constraint: Member must satisfy regular expression pattern: "
                                                 "(lambda:[*]|lambda:[a-zA-Z]+|[*])")
        qualifier = params.get("Qualifier")
        resource = f"{function.arn}:{qualifier}" if qualifier else function.arn
        statement = statement_for(params, resource)

        def add(conn: sa.Connection) -> str | None:
            current = model.get_function_by_id(conn, function.id)
            assert current is not None
            policy = current.policy or {"Version": "2012-10-17", "Id": "default", "Statement": []}
            if params.get("RevisionId") and params["RevisionId"] != policy.get("_RevisionId"):
                return "revision"
            if any(s.get("Sid") == statement["Sid"] for s in policy["Statement"]):
                return "conflict"
            policy["Statement"].append(statement)
            policy["_RevisionId"] = str(uuid.uuid4())
            conn.execute(lambda_functions.update().where(lambda_functions.c.id == function.id).values(
                policy=json.dumps(policy)))
            return None

        problem = await self.db.write(add)
        if problem == "conflict":
            raise ResourceConflictException(f"The statement id ({statement['Sid']}) provided already exists. Please "
                                            "provide a new statement id, or remove the existing statement.",
                                            Type="User")
        if problem == "revision":
            raise PreconditionFailedException("The Revision Id provided does not match the latest Revision Id.",
                                              Type="User")
        return {"Statement": json.dumps(statement)}

    async def remove_permission(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        function, _version = await self.resolve(ctx, params, "lambda:RemovePermission")
        sid = params["StatementId"]

        def remove(conn: sa.Connection) -> bool:
            current = model.get_function_by_id(conn, function.id)
            assert current is not None
            policy = current.policy or {"Statement": []}
            kept = [s for s in policy["Statement"] if s.get("Sid") != sid]
            if len(kept) == len(policy["Statement"]):
                return False
            policy["Statement"] = kept
            policy["_RevisionId"] = str(uuid.uuid4())
            conn.execute(lambda_functions.update().where(lambda_functions.c.id == function.id).values(
                policy=json.dumps(policy) if kept else None))
            return True

        if not await self.db.write(remove):
            raise ResourceNotFoundException("Statement not found", Type="User")
        return {}

    async def get_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        function, _version = await self.resolve(ctx, params, "lambda:GetPolicy")
        policy = function.policy
        if not policy or not policy.get("Statement"):
            raise ResourceNotFoundException("The resource you requested does not exist.", Type="User")
        document = {k: v for k, v in policy.items() if not k.startswith("_")}
        return {"Policy": json.dumps(document), "RevisionId": policy.get("_RevisionId", "")}

    # -- tags ---------------------------------------------------------------------------------------
    async def _tagged(self, ctx: RequestContext, arn: str, action: str) -> model.FunctionRow:
        ref = model.parse_function_name(arn)
        function, _version = await self.resolve(ctx, {"FunctionName": ref.name if not ref.account_id else arn},
                                                action)
        return function

    async def tag_resource(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        function = await self._tagged(ctx, params["Resource"], "lambda:TagResource")
        tags = {**function.tags, **(params.get("Tags") or {})}
        if len(tags) > 50:
            raise InvalidParameterValueException("Number of tags exceeds resource tag limit.")
        await self._save_tags(function.id, tags)
        return {}

    async def untag_resource(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        function = await self._tagged(ctx, params["Resource"], "lambda:UntagResource")
        tags = {k: v for k, v in function.tags.items() if k not in set(params.get("TagKeys") or [])}
        await self._save_tags(function.id, tags)
        return {}

    async def list_tags(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        function = await self._tagged(ctx, params["Resource"], "lambda:ListTags")
        return {"Tags": function.tags}

    async def _save_tags(self, function_id: str, tags: dict[str, str]) -> None:
        await self.db.write(lambda conn: conn.execute(lambda_functions.update().where(
            lambda_functions.c.id == function_id).values(tags=json.dumps(tags))))
