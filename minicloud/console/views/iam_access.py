"""IAM groups, roles and managed policies (with the JSON policy editor)."""

from __future__ import annotations

from typing import Any

from minicloud.console.http import Response, url
from minicloud.console.page import Page, Route, route
from minicloud.console.views.common import (
    EXAMPLE_POLICY,
    EXAMPLE_TRUST_POLICY,
    decode_document,
    document_or_name,
    field_error,
    next_marker,
    paged,
    status_of,
)

_NAME = r"(?P<name>[\w+=,.@-]{1,128})"


# -- groups ----------------------------------------------------------------------------------------
async def groups(page: Page, status: int = 200, **extra: Any) -> Response:
    result, failure = await page.attempt("iam", "ListGroups", paged(page.request.query.get("marker", ""), {}))
    values: dict[str, Any] = {"groups": (result or {}).get("Groups") or [], "failure": failure, "errors": {},
                              "values": {}, "next_marker": next_marker(result)}
    values.update(extra)
    return page.render("iam_groups.html", status, **values)


async def create_group(page: Page) -> Response:
    name = page.form("group_name").strip()
    _, failure = await page.attempt("iam", "CreateGroup", {"GroupName": name})
    if failure is not None:
        return await groups(page, status_of(failure), errors=field_error(failure, "group_name"),
                            values=page.request.form)
    return await page.done(url(f"/iam/groups/{name}"), f"Group {name} created.")


async def group(page: Page, status: int = 200, **extra: Any) -> Response:
    name = page.request.params["name"]
    found, failure = await page.attempt("iam", "GetGroup", {"GroupName": name})
    if failure is not None:
        return page.render("error.html", status_of(failure), code=failure.code, message=failure.message)
    attached, attached_failure = await page.attempt("iam", "ListAttachedGroupPolicies", {"GroupName": name})
    values: dict[str, Any] = {
        "group": (found or {}).get("Group", {}), "members": (found or {}).get("Users") or [],
        "attached": (attached or {}).get("AttachedPolicies") or [], "attached_failure": attached_failure,
        "errors": {}, "action_failure": None,
    }
    values.update(extra)
    return page.render("iam_group.html", status, **values)


async def _group_change(page: Page, operation: str, params: dict[str, Any], notice: str,
                        location: str | None = None, field: str | None = None) -> Response:
    name = page.request.params["name"]
    _, failure = await page.attempt("iam", operation, {"GroupName": name, **params})
    if failure is not None:
        if field is not None:
            return await group(page, status_of(failure), errors=field_error(failure, field))
        return await group(page, status_of(failure), action_failure=failure)
    return await page.done(location or url(f"/iam/groups/{name}"), notice)


async def delete_group(page: Page) -> Response:
    name = page.request.params["name"]
    return await _group_change(page, "DeleteGroup", {}, f"Group {name} deleted.", url("/iam/groups"))


async def group_attach(page: Page) -> Response:
    arn = page.form("policy_arn").strip()
    return await _group_change(page, "AttachGroupPolicy", {"PolicyArn": arn}, f"Attached {arn}.",
                               field="policy_arn")


async def group_detach(page: Page) -> Response:
    arn = page.form("policy_arn").strip()
    return await _group_change(page, "DetachGroupPolicy", {"PolicyArn": arn}, f"Detached {arn}.")


# -- roles -----------------------------------------------------------------------------------------
async def roles(page: Page, status: int = 200, **extra: Any) -> Response:
    result, failure = await page.attempt("iam", "ListRoles", paged(page.request.query.get("marker", ""), {}))
    values: dict[str, Any] = {"roles": (result or {}).get("Roles") or [], "failure": failure, "errors": {},
                              "values": {"trust": EXAMPLE_TRUST_POLICY}, "next_marker": next_marker(result)}
    values.update(extra)
    return page.render("iam_roles.html", status, **values)


async def create_role(page: Page) -> Response:
    name = page.form("role_name").strip()
    params: dict[str, Any] = {"RoleName": name, "AssumeRolePolicyDocument": page.form("trust")}
    if page.form("description").strip():
        params["Description"] = page.form("description").strip()
    _, failure = await page.attempt("iam", "CreateRole", params)
    if failure is not None:
        field = document_or_name(failure, "trust", "role_name")
        return await roles(page, status_of(failure), errors=field_error(failure, field), values=page.request.form)
    return await page.done(url(f"/iam/roles/{name}"), f"Role {name} created.")


async def role(page: Page, status: int = 200, **extra: Any) -> Response:
    name = page.request.params["name"]
    found, failure = await page.attempt("iam", "GetRole", {"RoleName": name})
    if failure is not None:
        return page.render("error.html", status_of(failure), code=failure.code, message=failure.message)
    attached, attached_failure = await page.attempt("iam", "ListAttachedRolePolicies", {"RoleName": name})
    found_role = (found or {}).get("Role", {})
    values: dict[str, Any] = {
        "role": found_role, "trust": decode_document(found_role.get("AssumeRolePolicyDocument")),
        "attached": (attached or {}).get("AttachedPolicies") or [], "attached_failure": attached_failure,
        "errors": {}, "action_failure": None,
    }
    values.update(extra)
    return page.render("iam_role.html", status, **values)


async def _role_change(page: Page, operation: str, params: dict[str, Any], notice: str,
                       location: str | None = None, field: str | None = None) -> Response:
    name = page.request.params["name"]
    _, failure = await page.attempt("iam", operation, {"RoleName": name, **params})
    if failure is not None:
        if field is not None:
            return await role(page, status_of(failure), errors=field_error(failure, field))
        return await role(page, status_of(failure), action_failure=failure)
    return await page.done(location or url(f"/iam/roles/{name}"), notice)


async def delete_role(page: Page) -> Response:
    name = page.request.params["name"]
    return await _role_change(page, "DeleteRole", {}, f"Role {name} deleted.", url("/iam/roles"))


async def role_attach(page: Page) -> Response:
    arn = page.form("policy_arn").strip()
    return await _role_change(page, "AttachRolePolicy", {"PolicyArn": arn}, f"Attached {arn}.", field="policy_arn")


async def role_detach(page: Page) -> Response:
    arn = page.form("policy_arn").strip()
    return await _role_change(page, "DetachRolePolicy", {"PolicyArn": arn}, f"Detached {arn}.")


async def role_trust(page: Page) -> Response:
    return await _role_change(page, "UpdateAssumeRolePolicy", {"PolicyDocument": page.form("trust")},
                              "Trust policy updated.", field="trust")


# -- managed policies ----------------------------------------------------------------------------------
async def policies(page: Page, status: int = 200, **extra: Any) -> Response:
    scope = page.request.query.get("scope", "Local")
    scope = scope if scope in ("Local", "AWS", "All") else "Local"
    result, failure = await page.attempt("iam", "ListPolicies",
                                         paged(page.request.query.get("marker", ""), {"Scope": scope}))
    values: dict[str, Any] = {"policies": (result or {}).get("Policies") or [], "failure": failure, "scope": scope,
                              "errors": {}, "values": {"document": EXAMPLE_POLICY}, "next_marker": next_marker(result)}
    values.update(extra)
    return page.render("iam_policies.html", status, **values)


async def create_policy(page: Page) -> Response:
    name = page.form("policy_name").strip()
    params: dict[str, Any] = {"PolicyName": name, "PolicyDocument": page.form("document")}
    if page.form("description").strip():
        params["Description"] = page.form("description").strip()
    result, failure = await page.attempt("iam", "CreatePolicy", params)
    if failure is not None:
        field = document_or_name(failure, "document", "policy_name")
        return await policies(page, status_of(failure), errors=field_error(failure, field), values=page.request.form)
    arn = (result or {}).get("Policy", {}).get("Arn", "")
    return await page.done(url("/iam/policy", arn=arn), f"Policy {name} created.")


async def policy(page: Page, status: int = 200, **extra: Any) -> Response:
    arn = page.request.value("arn")
    found, failure = await page.attempt("iam", "GetPolicy", {"PolicyArn": arn})
    if failure is not None:
        return page.render("error.html", status_of(failure), code=failure.code, message=failure.message)
    described = (found or {}).get("Policy", {})
    version, version_failure = await page.attempt(
        "iam", "GetPolicyVersion", {"PolicyArn": arn, "VersionId": described.get("DefaultVersionId", "v1")})
    entities, _ = await page.attempt("iam", "ListEntitiesForPolicy", {"PolicyArn": arn})
    values: dict[str, Any] = {
        "policy": described, "version_failure": version_failure,
        "document": decode_document((version or {}).get("PolicyVersion", {}).get("Document")),
        "entities": entities or {}, "action_failure": None, "errors": {}, "draft": None,
    }
    values.update(extra)
    return page.render("iam_policy.html", status, **values)


async def new_version(page: Page) -> Response:
    """Edit a customer managed policy: its document becomes a new default version."""
    arn, document = page.form("arn"), page.form("document")
    result, failure = await page.attempt("iam", "CreatePolicyVersion",
                                         {"PolicyArn": arn, "PolicyDocument": document, "SetAsDefault": True})
    if failure is not None:
        return await policy(page, status_of(failure), errors=field_error(failure, "document"), draft=document)
    version = (result or {}).get("PolicyVersion", {}).get("VersionId", "")
    return await page.done(url("/iam/policy", arn=arn), f"Version {version} is now the default.")


async def delete_policy(page: Page) -> Response:
    arn = page.form("arn")
    _, failure = await page.attempt("iam", "DeletePolicy", {"PolicyArn": arn})
    if failure is not None:
        return await policy(page, status_of(failure), action_failure=failure)
    return await page.done(url("/iam/policies"), f"Policy {arn} deleted.")


ROUTES: list[Route] = [
    route("GET", "/iam/groups", groups),
    route("POST", "/iam/groups", create_group),
    route("GET", f"/iam/groups/{_NAME}", group),
    route("POST", f"/iam/groups/{_NAME}/delete", delete_group),
    route("POST", f"/iam/groups/{_NAME}/policies/attach", group_attach),
    route("POST", f"/iam/groups/{_NAME}/policies/detach", group_detach),
    route("GET", "/iam/roles", roles),
    route("POST", "/iam/roles", create_role),
    route("GET", f"/iam/roles/{_NAME}", role),
    route("POST", f"/iam/roles/{_NAME}/delete", delete_role),
    route("POST", f"/iam/roles/{_NAME}/trust", role_trust),
    route("POST", f"/iam/roles/{_NAME}/policies/attach", role_attach),
    route("POST", f"/iam/roles/{_NAME}/policies/detach", role_detach),
    route("GET", "/iam/policies", policies),
    route("POST", "/iam/policies", create_policy),
    route("GET", "/iam/policy", policy),
    route("POST", "/iam/policy/delete", delete_policy),
    route("POST", "/iam/policy/version", new_version),
]
