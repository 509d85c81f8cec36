"""AWS Organizations: one organization, whose management account is minicloud's first account.

Every account minicloud holds is a member. CreateAccount creates the account at once (its status
is SUCCEEDED or FAILED with AWS's reason) together with the role that lets the management account
in (``OrganizationAccountAccessRole`` by default, trusting the management account, with
AdministratorAccess), exactly the way in that AWS gives.
"""

from __future__ import annotations

import hashlib
import secrets
import string
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from minicloud.aws.context import RequestContext
from minicloud.aws.pagination import decode_token, encode_token
from minicloud.aws.provider import Provider
from minicloud.iam.access_role import create_access_role
from minicloud.iam.accounts import (
    Account,
    create_account,
    email_taken,
    get_account,
    list_accounts,
    management_account,
)
from minicloud.runtime import Runtime
from minicloud.services.organizations.errors import (
    AccessDeniedException,
    AccountNotFoundException,
    AlreadyInOrganizationException,
    CreateAccountStatusNotFoundException,
    InvalidInputException,
)
from minicloud.services.organizations.tables import create_account_requests

_ALNUM = string.ascii_lowercase + string.digits


def _derived(prefix: str, seed: str, length: int) -> str:
    digest = hashlib.sha256(seed.encode()).digest()
    return prefix + "".join(_ALNUM[b % len(_ALNUM)] for b in digest[:length])


class OrganizationsProvider(Provider):
    service_name = "organizations"
    global_service = True
    access_denied = AccessDeniedException

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    # -- the organization ---------------------------------------------------------------------------
    async def _management(self) -> Account:
        account = await self.runtime.db.read(management_account)
        assert account is not None, "minicloud up bootstraps the management account"
        return account

    def _org_id(self, management: Account) -> str:
        return _derived("o-", management.account_id, 10)

    def _organization(self, management: Account) -> dict[str, Any]:
        org_id = self._org_id(management)
        return {
            "Id": org_id,
            "Arn": f"arn:aws:organizations::{management.account_id}:organization/{org_id}",
            "FeatureSet": "ALL",
            "MasterAccountArn": self._account_arn(management, management.account_id),
            "MasterAccountId": management.account_id,
            "MasterAccountEmail": management.email,
            "AvailablePolicyTypes": [],
        }

    def _account_arn(self, management: Account, account_id: str) -> str:
        return f"arn:aws:organizations::{management.account_id}:account/{self._org_id(management)}/{account_id}"

    def _account(self, management: Account, account: Account) -> dict[str, Any]:
        return {
            "Id": account.account_id, "Arn": self._account_arn(management, account.account_id),
            "Email": account.email, "Name": account.name, "Status": account.status, "State": account.status,
            "JoinedMethod": account.joined_method, "JoinedTimestamp": account.created_at,
        }

    async def _require_management(self, ctx: RequestContext, action: str, resource: str) -> Account:
        management = await self._management()
        if ctx.account_id != management.account_id:
            raise AccessDeniedException("You don't have permissions to access this resource.")
        await ctx.authorize(action, resource)
        return management

    async def describe_organization(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        management = await self._management()
        # Member accounts may describe their organization too.
        await ctx.authorize("organizations:DescribeOrganization", "*")
        return {"Organization": self._organization(management)}

    async def create_organization(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await ctx.authorize("organizations:CreateOrganization", "*")
        raise AlreadyInOrganizationException("The AWS account is already a member of an organization.")

    async def list_roots(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        management = await self._require_management(ctx, "organizations:ListRoots", "*")
        org_id = self._org_id(management)
        root_id = _derived("r-", management.account_id, 4)
        return {"Roots": [{
            "Id": root_id, "Name": "Root", "PolicyTypes": [],
            "Arn": f"arn:aws:organizations::{management.account_id}:root/{org_id}/{root_id}",
        }]}

    # -- accounts -----------------------------------------------------------------------------------
    async def create_account(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        management = await self._require_management(ctx, "organizations:CreateAccount", "*")
        email: str = params["Email"]
        name: str = params["AccountName"]
        role_name: str = params.get("RoleName") or "OrganizationAccountAccessRole"
        request_id = "car-" + secrets.token_hex(16)
        now = datetime.now(UTC)

        base: dict[str, Any] = {
            "request_id": request_id, "management_account_id": management.account_id,
            "account_name": name, "requested_at": now, "completed_at": now,
        }
        email_exists = {**base, "state": "FAILED", "failure_reason": "EMAIL_ALREADY_EXISTS", "account_id": None}

        def create(conn: sa.Connection) -> dict[str, Any]:
            record = email_exists
            if not email_taken(conn, email):
                account, _keys = create_account(conn, name, email)
                create_access_role(conn, account.account_id, management.account_id, role_name, now)
                record = {**base, "state": "SUCCEEDED", "failure_reason": None, "account_id": account.account_id}
            conn.execute(create_account_requests.insert().values(**record))
            return record

        def record_failure(conn: sa.Connection) -> dict[str, Any]:
            conn.execute(create_account_requests.insert().values(**email_exists))
            return email_exists

        try:
            record = await self.runtime.db.write(create)
        except sa.exc.IntegrityError:  # a concurrent request took the email first (PostgreSQL)
            record = await self.runtime.db.write(record_failure)
        self.runtime.credentials.invalidate()
        return {"CreateAccountStatus": self._status(record)}

    @staticmethod
    def _status(record: Any) -> dict[str, Any]:
        status: dict[str, Any] = {
            "Id": record["request_id"], "AccountName": record["account_name"], "State": record["state"],
            "RequestedTimestamp": record["requested_at"],
        }
        if record["completed_at"] is not None:
            status["CompletedTimestamp"] = record["completed_at"]
        if record["account_id"]:
            status["AccountId"] = record["account_id"]
        if record["failure_reason"]:
            status["FailureReason"] = record["failure_reason"]
        return status

    async def describe_create_account_status(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        management = await self._require_management(ctx, "organizations:DescribeCreateAccountStatus", "*")
        request_id = params["CreateAccountRequestId"]
        row = await self.runtime.db.read(lambda conn: conn.execute(
            sa.select(create_account_requests).where(
                create_account_requests.c.request_id == request_id,
                create_account_requests.c.management_account_id == management.account_id)).first())
        if row is None:
            raise CreateAccountStatusNotFoundException(
                "We can't find an create account request with the CreateAccountRequestId that you specified.")
        return {"CreateAccountStatus": self._status(row._mapping)}

    async def list_create_account_status(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        management = await self._require_management(ctx, "organizations:ListCreateAccountStatus", "*")
        states = params.get("States") or []
        query = sa.select(create_account_requests).where(
            create_account_requests.c.management_account_id == management.account_id)
        if states:
            query = query.where(create_account_requests.c.state.in_(states))
        rows = await self.runtime.db.read(lambda conn: conn.execute(
            query.order_by(create_account_requests.c.requested_at, create_account_requests.c.request_id)).all())
        page, token = self._page([self._status(r._mapping) for r in rows], params)
        result: dict[str, Any] = {"CreateAccountStatuses": page}
        if token:
            result["NextToken"] = token
        return result

    async def describe_account(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        account_id = params["AccountId"]
        management = await self._management()
        management = await self._require_management(ctx, "organizations:DescribeAccount",
                                                     self._account_arn(management, account_id))
        account = await self.runtime.db.read(lambda conn: get_account(conn, account_id))
        if account is None:
            raise AccountNotFoundException("You specified an account that doesn't exist.")
        return {"Account": self._account(management, account)}

    async def list_accounts(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        management = await self._require_management(ctx, "organizations:ListAccounts", "*")
        accounts = await self.runtime.db.read(list_accounts)
        page, token = self._page([self._account(management, a) for a in accounts], params)
        result: dict[str, Any] = {"Accounts": page}
        if token:
            result["NextToken"] = token
        return result

    @staticmethod
    def _page(items: list[dict[str, Any]], params: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
        limit = int(params.get("MaxResults") or 20)
        start = 0
        if params.get("NextToken"):
            position = decode_token(params["NextToken"])
            offset = position.get("offset") if position else None
            if type(offset) is not int or offset < 0:
                raise InvalidInputException("The provided pagination token is invalid.",
                                            Reason="INVALID_PAGINATION_TOKEN")
            start = offset
        page = items[start:start + limit]
        more = start + limit < len(items)
        return page, encode_token({"offset": start + limit}) if more else None
