"""STS with real clients: temporary credentials that work, expire and carry the role's permissions."""

from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError

from tests.support.server import Keys, MinicloudServer

ALLOW_ALL = json.dumps({"Version": "2012-10-17",
                        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})


def _user_with_keys(server: MinicloudServer, policy: str | None = ALLOW_ALL) -> tuple[str, Keys]:
    iam = server.client("iam")
    name = f"u-{uuid.uuid4().hex[:10]}"
    arn = iam.create_user(UserName=name)["User"]["Arn"]
    if policy:
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=policy)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return arn, Keys(key["AccessKeyId"], key["SecretAccessKey"])


def _role(server: MinicloudServer, trust_principal: str, policy: str | None = None,
          max_session: int = 3600) -> str:
    iam = server.client("iam")
    name = f"r-{uuid.uuid4().hex[:10]}"
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": trust_principal}, "Action": "sts:AssumeRole"}]}
    arn: str = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust),
                               MaxSessionDuration=max_session)["Role"]["Arn"]
    if policy:
        iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=policy)
    return arn


def _keys(credentials: dict[str, str]) -> Keys:
    return Keys(credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"])


def test_assume_role_gives_the_roles_identity_and_permissions(server: MinicloudServer) -> None:
    user_arn, user_keys = _user_with_keys(server)
    read_only = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["iam:ListUsers", "iam:GetUser"], "Resource": "*"}]})
    role_arn = _role(server, user_arn, read_only)
    out = server.client("sts", keys=user_keys).assume_role(RoleArn=role_arn, RoleSessionName="build-42")
    role_name = role_arn.rsplit("/", 1)[1]
    assert out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{server.account_id}:assumed-role/{role_name}/build-42"
    assert out["AssumedRoleUser"]["AssumedRoleId"].startswith("AROA")
    assert out["Credentials"]["AccessKeyId"].startswith("ASIA")
    session = _keys(out["Credentials"])
    identity = server.client("sts", keys=session).get_caller_identity()
    assert identity["Arn"] == out["AssumedRoleUser"]["Arn"]
    iam = server.client("iam", keys=session)
    iam.list_users()  # allowed by the role's policy
    with pytest.raises(ClientError) as err:
        iam.create_user(UserName="nope")
    assert err.value.response["Error"]["Code"] == "AccessDenied"
    assert out["AssumedRoleUser"]["Arn"] in err.value.response["Error"]["Message"]


def test_the_cli_assumes_a_role(server: MinicloudServer) -> None:
    user_arn, user_keys = _user_with_keys(server)
    role_arn = _role(server, user_arn, ALLOW_ALL)
    out = server.aws_json("sts", "assume-role", "--role-arn", role_arn, "--role-session-name", "cli",
                          keys=user_keys)
    session = _keys(out["Credentials"])
    assert server.aws_json("sts", "get-caller-identity", keys=session)["Arn"].endswith("/cli")


def test_trust_policy_must_name_the_caller(server: MinicloudServer) -> None:
    _, stranger_keys = _user_with_keys(server)
    someone_arn, _ = _user_with_keys(server)
    role_arn = _role(server, someone_arn)
    with pytest.raises(ClientError) as err:
        server.client("sts", keys=stranger_keys).assume_role(RoleArn=role_arn, RoleSessionName="xx")
    assert err.value.response["Error"]["Code"] == "AccessDenied"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_root_cannot_assume_roles(server: MinicloudServer) -> None:
    role_arn = _role(server, f"arn:aws:iam::{server.account_id}:root")
    with pytest.raises(ClientError) as err:
        server.client("sts").assume_role(RoleArn=role_arn, RoleSessionName="xx")
    assert err.value.response["Error"]["Code"] == "AccessDenied"


def test_session_policy_narrows_the_session(server: MinicloudServer) -> None:
    user_arn, user_keys = _user_with_keys(server)
    role_arn = _role(server, user_arn, ALLOW_ALL)
    only_get_user = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iam:GetUser", "Resource": "*"}]})
    out = server.client("sts", keys=user_keys).assume_role(RoleArn=role_arn, RoleSessionName="narrow",
                                                            Policy=only_get_user)
    assert 0 < out["PackedPolicySize"] <= 100
    with pytest.raises(ClientError) as err:
        server.client("iam", keys=_keys(out["Credentials"])).list_users()
    assert err.value.response["Error"]["Code"] == "AccessDenied"


def test_duration_limits(server: MinicloudServer) -> None:
    user_arn, user_keys = _user_with_keys(server)
    role_arn = _role(server, user_arn, max_session=3600)
    sts = server.client("sts", keys=user_keys)
    with pytest.raises(ClientError) as err:
        sts.assume_role(RoleArn=role_arn, RoleSessionName="xx", DurationSeconds=7200)
    assert err.value.response["Error"]["Code"] == "ValidationError"
    assert "MaxSessionDuration" in err.value.response["Error"]["Message"]


def test_tampered_or_missing_session_token_is_refused(server: MinicloudServer) -> None:
    user_arn, user_keys = _user_with_keys(server)
    role_arn = _role(server, user_arn, ALLOW_ALL)
    creds = server.client("sts", keys=user_keys).assume_role(RoleArn=role_arn, RoleSessionName="tt")["Credentials"]
    for token in (None, creds["SessionToken"][:-4] + "AAAA"):
        keys = Keys(creds["AccessKeyId"], creds["SecretAccessKey"], token)
        with pytest.raises(ClientError) as err:
            server.client("sts", keys=keys).get_caller_identity()
        assert err.value.response["Error"]["Code"] == "InvalidClientTokenId"


def test_get_session_token_for_a_user(server: MinicloudServer) -> None:
    user_arn, user_keys = _user_with_keys(server)
    creds = server.client("sts", keys=user_keys).get_session_token(DurationSeconds=900)["Credentials"]
    session = _keys(creds)
    assert server.client("sts", keys=session).get_caller_identity()["Arn"] == user_arn
    # without MFA, session-token credentials cannot call IAM (as on AWS)
    with pytest.raises(ClientError) as err:
        server.client("iam", keys=session).list_users()
    assert err.value.response["Error"]["Code"] == "InvalidClientTokenId"
    with pytest.raises(ClientError) as err:
        server.client("sts", keys=session).get_session_token()
    assert err.value.response["Error"]["Code"] == "AccessDenied"


def test_expired_credentials_are_refused(fresh_server: MinicloudServer) -> None:
    import sqlalchemy as sa

    from minicloud.iam.sessions import sts_sessions

    fresh_server.start()
    _, user_keys = _user_with_keys(fresh_server)
    creds = fresh_server.client("sts", keys=user_keys).get_session_token(DurationSeconds=900)["Credentials"]
    engine = sa.create_engine(f"sqlite:///{fresh_server.data_dir / 'metadata.sqlite3'}")
    with engine.begin() as conn:  # let the clock run out, as 15 minutes would
        conn.execute(sts_sessions.update().where(sts_sessions.c.access_key_id == creds["AccessKeyId"])
                     .values(expires_at=sa.func.datetime("now", "-1 minute")))
    engine.dispose()
    fresh_server.stop()
    fresh_server.start()  # a restart also drops cached credentials
    with pytest.raises(ClientError) as err:
        fresh_server.client("sts", keys=_keys(creds)).get_caller_identity()
    assert err.value.response["Error"]["Code"] == "ExpiredToken"
