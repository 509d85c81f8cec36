"""The role a new member account is created with, so that its management account can get in
(used by Organizations CreateAccount and `minicloud accounts create`)."""

from __future__ import annotations

from datetime import datetime

import orjson
import sqlalchemy as sa

from minicloud.iam import ids
from minicloud.iam.tables import ROLE, iam_attachments, iam_roles

ADMINISTRATOR_ACCESS = "arn:aws:iam::aws:policy/AdministratorAccess"


def create_access_role(conn: sa.Connection, account_id: str, management_account_id: str, role_name: str,
                       now: datetime) -> str:
    """Create ``role_name`` in ``account_id``, trusting the management account, with admin rights."""
    trust = orjson.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{management_account_id}:root"},
            "Action": "sts:AssumeRole",
        }],
    }).decode()
    role_id = ids.unique_id(ids.ROLE)
    conn.execute(iam_roles.insert().values(
        role_id=role_id, account_id=account_id, name=role_name, name_key=role_name.lower(), path="/",
        assume_role_policy=trust, description=None, max_session_duration=3600, permissions_boundary=None,
        created_at=now))
    conn.execute(iam_attachments.insert().values(
        entity_type=ROLE, entity_id=role_id, policy_arn=ADMINISTRATOR_ACCESS, account_id=account_id,
        attached_at=now))
    return f"arn:aws:iam::{account_id}:role/{role_name}"
