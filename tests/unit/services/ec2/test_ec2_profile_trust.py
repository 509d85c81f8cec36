"""An instance profile's role gives the instance credentials only when its trust policy lets
ec2.amazonaws.com assume it, as STS decides for the EC2 service (regression test of the security
review: any role put in a profile used to be handed out)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from minicloud.iam.tables import iam_roles
from minicloud.services.ec2.profiles import issue_role_credentials, trusts_ec2
from minicloud.storage.metadata.db import Database
from minicloud.storage.metadata.schema import accounts

ACCOUNT = "111122223333"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/Worker"


def _trust(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _allow(principal: Any, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole", **extra}


EC2 = {"Service": "ec2.amazonaws.com"}


@pytest.mark.parametrize(("document", "trusted"), [
    (_trust(_allow(EC2)), True),
    (_trust(_allow({"Service": ["lambda.amazonaws.com", "ec2.amazonaws.com"]})), True),
    (_trust(_allow({"Service": "lambda.amazonaws.com"})), False),
    (_trust(_allow({"AWS": f"arn:aws:iam::{ACCOUNT}:root"})), False),
    (_trust(_allow(EC2), {"Effect": "Deny", "Principal": EC2, "Action": "sts:AssumeRole"}), False),
    (_trust(_allow(EC2, Condition={"StringEquals": {"aws:SourceAccount": "999988887777"}})), False),
    (_trust({"Effect": "Allow", "Principal": EC2, "Action": "sts:TagSession"}), False),
    (_trust(), False),
    ("not json", False),
    (None, False),
])
def test_trust_policy_decides_whether_ec2_may_assume(document: str | None, trusted: bool) -> None:
    assert trusts_ec2(document, ROLE_ARN, ACCOUNT) is trusted


def _role(document: str) -> Any:
    def write(conn: sa.Connection) -> None:
        now = datetime.now(UTC)
        conn.execute(accounts.insert().values(account_id=ACCOUNT, name="a", email="a@example.com", status="ACTIVE",
                                              management=True, joined_method="CREATED", created_at=now))
        conn.execute(iam_roles.insert().values(
            role_id="AROAEXAMPLE2", account_id=ACCOUNT, name="Worker", name_key="worker", path="/",
            assume_role_policy=document, max_session_duration=3600, created_at=now))
    return write


def test_no_credentials_for_a_role_that_does_not_trust_ec2(metadata_db: Database) -> None:
    metadata_db.write_sync(_role(_trust(_allow({"Service": "lambda.amazonaws.com"}))))
    expires = datetime.now(UTC) + timedelta(hours=1)
    issued = metadata_db.write_sync(lambda conn: issue_role_credentials(conn, ROLE_ARN, "i-1", expires))
    assert issued is None


def test_credentials_for_a_role_that_trusts_ec2(metadata_db: Database) -> None:
    metadata_db.write_sync(_role(_trust(_allow(EC2))))
    expires = datetime.now(UTC) + timedelta(hours=1)
    issued = metadata_db.write_sync(lambda conn: issue_role_credentials(conn, ROLE_ARN, "i-1", expires))
    assert issued is not None and issued.access_key_id.startswith("ASIA")
