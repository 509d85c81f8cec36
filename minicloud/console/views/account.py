"""The signed-in IAM user's own console password (IAM ChangePassword, as that user); a user whose
password must be reset is sent here before anything else."""

from __future__ import annotations

from typing import Any

from minicloud.console.http import Response, url
from minicloud.console.page import Page, Route, route
from minicloud.console.views.common import field_error, status_of
from minicloud.iam.identity import PrincipalKind


async def password_page(page: Page, status: int = 200, **extra: Any) -> Response:
    values: dict[str, Any] = {"errors": {}, "is_user": page.principal.kind is PrincipalKind.USER,
                              "reset_required": await page.console.auth.reset_required(page.session)}
    values.update(extra)
    return page.render("password.html", status, **values)


async def change_password(page: Page) -> Response:
    new = page.form("new_password")
    if new != page.form("confirm_password"):
        return await password_page(page, 400, errors={"confirm_password": "The new passwords do not match."})
    _, failure = await page.attempt("iam", "ChangePassword", {"OldPassword": page.form("old_password"),
                                                              "NewPassword": new})
    if failure is not None:
        field = "old_password" if "old password" in failure.message.lower() else "new_password"
        return await password_page(page, status_of(failure), errors=field_error(failure, field))
    return await page.done(url("/"), "Your console password was changed.")


ROUTES: list[Route] = [
    route("GET", "/password", password_page),
    route("POST", "/password", change_password),
]
