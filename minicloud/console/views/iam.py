"""IAM users: list, create, delete; a user's access keys, console password, groups and policies."""

from __future__ import annotations

from typing import Any

from minicloud.console.calls import CallFailure
from minicloud.console.http import Response, url
from minicloud.console.page import Page, Route, route
from minicloud.console.views import iam_access
from minicloud.console.views.common import field_error, next_marker, paged, status_of

_NAME = r"(?P<name>[\w+=,.@-]{1,128})"


# -- users -----------------------------------------------------------------------------------------
async def users(page: Page, status: int = 200, **extra: Any) -> Response:
    result, failure = await page.attempt("iam", "ListUsers", paged(page.request.query.get("marker", ""), {}))
    values: dict[str, Any] = {"users": (result or {}).get("Users") or [], "failure": failure, "errors": {},
                              "values": {}, "next_marker": next_marker(result)}
    values.update(extra)
    return page.render("iam_users.html", status, **values)


async def create_user(page: Page) -> Response:
    name = page.form("user_name").strip()
    params: dict[str, Any] = {"UserName": name}
    if page.form("path").strip():
        params["Path"] = page.form("path").strip()
    _, failure = await page.attempt("iam", "CreateUser", params)
    if failure is not None:
        return await users(page, status_of(failure), errors=field_error(failure, "user_name"),
                           values=page.request.form)
    return await page.done(url(f"/iam/users/{name}"), f"User {name} created.")


async def delete_user(page: Page) -> Response:
    name = page.request.params["name"]
    _, failure = await page.attempt("iam", "DeleteUser", {"UserName": name})
    if failure is not None:
        return await user(page, status_of(failure), action_failure=failure)
    return await page.done(url("/iam/users"), f"User {name} deleted.")


async def user(page: Page, status: int = 200, **extra: Any) -> Response:
    name = page.request.params["name"]
    found, failure = await page.attempt("iam", "GetUser", {"UserName": name})
    if failure is not None:
        return page.render("error.html", status_of(failure) if failure.code != "NoSuchEntity" else 404,
                           code=failure.code, message=failure.message)
    keys, keys_failure = await page.attempt("iam", "ListAccessKeys", {"UserName": name})
    profile, profile_failure = await page.attempt("iam", "GetLoginProfile", {"UserName": name})
    groups, groups_failure = await page.attempt("iam", "ListGroupsForUser", {"UserName": name})
    attached, attached_failure = await page.attempt("iam", "ListAttachedUserPolicies", {"UserName": name})
    all_groups, _ = await page.attempt("iam", "ListGroups", {})
    values: dict[str, Any] = {
        "user": (found or {}).get("User", {}),
        "keys": (keys or {}).get("AccessKeyMetadata") or [], "keys_failure": keys_failure,
        "profile": (profile or {}).get("LoginProfile"),
        "profile_failure": profile_failure if profile_failure and profile_failure.code != "NoSuchEntity" else None,
        "groups": (groups or {}).get("Groups") or [], "groups_failure": groups_failure,
        "all_groups": [g["GroupName"] for g in (all_groups or {}).get("Groups") or []],
        "attached": (attached or {}).get("AttachedPolicies") or [], "attached_failure": attached_failure,
        "errors": {}, "action_failure": None,
    }
    values.update(extra)
    return page.render("iam_user.html", status, **values)


# -- access keys -----------------------------------------------------------------------------------
async def create_key(page: Page) -> Response:
    name = page.request.params["name"]
    result, failure = await page.attempt("iam", "CreateAccessKey", {"UserName": name})
    if failure is not None:
        return await user(page, status_of(failure), action_failure=failure)
    key = (result or {}).get("AccessKey") or {}
    # The next page shows the secret once (the session keeps it until that page is rendered).
    return await page.done(url(f"/iam/users/{name}"), f"Access key {key.get('AccessKeyId')} created.",
                           reveal={"AccessKeyId": key.get("AccessKeyId"),
                                   "SecretAccessKey": key.get("SecretAccessKey")})


async def key_status(page: Page) -> Response:
    name, key = page.request.params["name"], page.request.params["key"]
    status = "Inactive" if page.form("status") == "Inactive" else "Active"
    _, failure = await page.attempt("iam", "UpdateAccessKey", {"UserName": name, "AccessKeyId": key,
                                                               "Status": status})
    if failure is not None:
        return await user(page, status_of(failure), action_failure=failure)
    return await page.done(url(f"/iam/users/{name}"), f"Access key {key} is now {status}.")


async def delete_key(page: Page) -> Response:
    name, key = page.request.params["name"], page.request.params["key"]
    _, failure = await page.attempt("iam", "DeleteAccessKey", {"UserName": name, "AccessKeyId": key})
    if failure is not None:
        return await user(page, status_of(failure), action_failure=failure)
    return await page.done(url(f"/iam/users/{name}"), f"Access key {key} deleted.")


# -- console password --------------------------------------------------------------------------------
async def set_password(page: Page) -> Response:
    name = page.request.params["name"]
    params = {"UserName": name, "Password": page.form("password"),
              "PasswordResetRequired": page.form("reset_required") == "on"}
    exists = page.form("exists") == "1"
    _, failure = await page.attempt("iam", "UpdateLoginProfile" if exists else "CreateLoginProfile", params)
    if failure is not None:
        return await user(page, status_of(failure), errors=field_error(failure, "password"))
    return await page.done(url(f"/iam/users/{name}"), f"Console password of {name} {'changed' if exists else 'set'}.")


async def delete_password(page: Page) -> Response:
    name = page.request.params["name"]
    _, failure = await page.attempt("iam", "DeleteLoginProfile", {"UserName": name})
    if failure is not None:
        return await user(page, status_of(failure), action_failure=failure)
    return await page.done(url(f"/iam/users/{name}"), f"Console access of {name} removed.")


# -- groups and policies of a user ----------------------------------------------------------------------
async def _user_change(page: Page, operation: str, params: dict[str, Any], notice: str,
                       field: str | None = None) -> Response:
    name = page.request.params["name"]
    _, failure = await page.attempt("iam", operation, {"UserName": name, **params})
    if failure is not None:
        if field is not None:
            return await user(page, status_of(failure), errors=field_error(failure, field))
        return await user(page, status_of(failure), action_failure=failure)
    return await page.done(url(f"/iam/users/{name}"), notice)


async def add_to_group(page: Page) -> Response:
    group = page.form("group_name")
    return await _user_change(page, "AddUserToGroup", {"GroupName": group}, f"Added to group {group}.", "group_name")


async def remove_from_group(page: Page) -> Response:
    group = page.form("group_name")
    return await _user_change(page, "RemoveUserFromGroup", {"GroupName": group}, f"Removed from group {group}.")


async def attach_policy(page: Page) -> Response:
    arn = page.form("policy_arn").strip()
    return await _user_change(page, "AttachUserPolicy", {"PolicyArn": arn}, f"Attached {arn}.", "policy_arn")


async def detach_policy(page: Page) -> Response:
    arn = page.form("policy_arn").strip()
    return await _user_change(page, "DetachUserPolicy", {"PolicyArn": arn}, f"Detached {arn}.")


ROUTES: list[Route] = [
    route("GET", "/iam/users", users),
    route("POST", "/iam/users", create_user),
    route("GET", f"/iam/users/{_NAME}", user),
    route("POST", f"/iam/users/{_NAME}/delete", delete_user),
    route("POST", f"/iam/users/{_NAME}/keys", create_key),
    route("POST", f"/iam/users/{_NAME}/keys/(?P<key>[A-Z0-9]{{16,128}})/status", key_status),
    route("POST", f"/iam/users/{_NAME}/keys/(?P<key>[A-Z0-9]{{16,128}})/delete", delete_key),
    route("POST", f"/iam/users/{_NAME}/password", set_password),
    route("POST", f"/iam/users/{_NAME}/password/delete", delete_password),
    route("POST", f"/iam/users/{_NAME}/groups/add", add_to_group),
    route("POST", f"/iam/users/{_NAME}/groups/remove", remove_from_group),
    route("POST", f"/iam/users/{_NAME}/policies/attach", attach_policy),
    route("POST", f"/iam/users/{_NAME}/policies/detach", detach_policy),
    *iam_access.ROUTES,
]

__all__ = ["ROUTES", "CallFailure"]
