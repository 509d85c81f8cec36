"""CloudWatch Logs with boto3 and the AWS CLI against a real minicloud."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from tests.support.server import MinicloudServer


def now_ms() -> int:
    return int(time.time() * 1000)


def test_groups_streams_events(server: MinicloudServer) -> None:
    logs = server.client("logs")
    logs.create_log_group(logGroupName="/app/web", tags={"team": "a"})
    with pytest.raises(ClientError) as caught:
        logs.create_log_group(logGroupName="/app/web")
    assert caught.value.response["Error"]["Code"] == "ResourceAlreadyExistsException"
    logs.put_retention_policy(logGroupName="/app/web", retentionInDays=7)
    groups = logs.describe_log_groups(logGroupNamePrefix="/app/")["logGroups"]
    assert [(g["logGroupName"], g["retentionInDays"]) for g in groups] == [("/app/web", 7)]
    assert groups[0]["arn"].endswith(":log-group:/app/web:*")
    with pytest.raises(ClientError) as caught:
        logs.put_retention_policy(logGroupName="/app/web", retentionInDays=8)
    assert caught.value.response["Error"]["Code"] == "InvalidParameterException"
    logs.create_log_stream(logGroupName="/app/web", logStreamName="i-1")
    logs.create_log_stream(logGroupName="/app/web", logStreamName="i-2")
    base = now_ms()
    logs.put_log_events(logGroupName="/app/web", logStreamName="i-1", logEvents=[
        {"timestamp": base, "message": "GET /index 200"},
        {"timestamp": base + 1, "message": "GET /missing 404 ERROR"},
        {"timestamp": base + 2, "message": "POST /form 500 ERROR timeout"}])
    logs.put_log_events(logGroupName="/app/web", logStreamName="i-2", logEvents=[
        {"timestamp": base + 3, "message": "worker ERROR disk"}])
    events = logs.get_log_events(logGroupName="/app/web", logStreamName="i-1", startFromHead=True)["events"]
    assert [e["message"] for e in events] == ["GET /index 200", "GET /missing 404 ERROR",
                                              "POST /form 500 ERROR timeout"]
    page = logs.get_log_events(logGroupName="/app/web", logStreamName="i-1", startFromHead=True, limit=2)
    assert len(page["events"]) == 2
    rest = logs.get_log_events(logGroupName="/app/web", logStreamName="i-1", nextToken=page["nextForwardToken"])
    assert [e["message"] for e in rest["events"]] == ["POST /form 500 ERROR timeout"]
    found = logs.filter_log_events(logGroupName="/app/web", filterPattern="ERROR")["events"]
    assert [(e["logStreamName"], e["message"]) for e in found] == [
        ("i-1", "GET /missing 404 ERROR"), ("i-1", "POST /form 500 ERROR timeout"), ("i-2", "worker ERROR disk")]
    found = logs.filter_log_events(logGroupName="/app/web", filterPattern="ERROR -timeout",
                                   logStreamNames=["i-1"])["events"]
    assert [e["message"] for e in found] == ["GET /missing 404 ERROR"]
    found = logs.filter_log_events(logGroupName="/app/web", filterPattern='"POST /form"')["events"]
    assert len(found) == 1
    streams = logs.describe_log_streams(logGroupName="/app/web", orderBy="LastEventTime", descending=True)
    assert [s["logStreamName"] for s in streams["logStreams"]] == ["i-2", "i-1"]
    assert streams["logStreams"][1]["firstEventTimestamp"] == base
    with pytest.raises(ClientError) as caught:
        logs.put_log_events(logGroupName="/app/web", logStreamName="nope",
                            logEvents=[{"timestamp": base, "message": "x"}])
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as caught:
        logs.put_log_events(logGroupName="/app/web", logStreamName="i-1", logEvents=[
            {"timestamp": base + 5, "message": "b"}, {"timestamp": base, "message": "a"}])
    assert caught.value.response["Error"]["Code"] == "InvalidParameterException"
    old = logs.put_log_events(logGroupName="/app/web", logStreamName="i-2", logEvents=[
        {"timestamp": base - 20 * 86_400_000, "message": "too old"},
        {"timestamp": base - 20 * 86_400_000 + 1, "message": "too old as well"}])
    assert old["rejectedLogEventsInfo"] == {"tooOldLogEventEndIndex": 1, "expiredLogEventEndIndex": 1}
    logs.put_log_events(logGroupName="/app/web", logStreamName="i-2",
                        logEvents=[{"timestamp": base + 9, "message": "fresh"}])
    messages = [e["message"] for e in logs.get_log_events(logGroupName="/app/web", logStreamName="i-2")["events"]]
    assert "too old" not in messages and "fresh" in messages
    logs.delete_log_group(logGroupName="/app/web")
    with pytest.raises(ClientError) as caught:
        logs.describe_log_streams(logGroupName="/app/web")
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_cli_and_pagination(server: MinicloudServer) -> None:
    for i in range(3):
        server.aws("logs", "create-log-group", "--log-group-name", f"/cli/g{i}")
    listed = server.aws_json("logs", "describe-log-groups", "--log-group-name-prefix", "/cli/")
    assert [g["logGroupName"] for g in listed["logGroups"]] == ["/cli/g0", "/cli/g1", "/cli/g2"]
    logs = server.client("logs")
    names = [g["logGroupName"] for page in logs.get_paginator("describe_log_groups").paginate(
        logGroupNamePrefix="/cli/", PaginationConfig={"PageSize": 2}) for g in page["logGroups"]]
    assert names == ["/cli/g0", "/cli/g1", "/cli/g2"]
    server.aws("logs", "create-log-stream", "--log-group-name", "/cli/g0", "--log-stream-name", "s")
    server.aws("logs", "put-log-events", "--log-group-name", "/cli/g0", "--log-stream-name", "s", "--log-events",
               f"timestamp={now_ms()},message=hello-from-cli")
    got = server.aws_json("logs", "get-log-events", "--log-group-name", "/cli/g0", "--log-stream-name", "s")
    assert [e["message"] for e in got["events"]] == ["hello-from-cli"]
    result = server.aws("logs", "describe-log-streams", "--log-group-name", "/cli/missing", check=False)
    assert result.returncode != 0 and "ResourceNotFoundException" in result.stderr


def test_other_accounts_cannot_read_a_group(server: MinicloudServer) -> None:
    logs = server.client("logs")
    logs.create_log_group(logGroupName="/private/app")
    iam = server.client("iam")
    iam.create_user(UserName="log-reader")
    keys = iam.create_access_key(UserName="log-reader")["AccessKey"]
    from tests.support.server import Keys
    reader = server.client("logs", Keys(keys["AccessKeyId"], keys["SecretAccessKey"]))
    with pytest.raises(ClientError) as caught:
        reader.describe_log_streams(logGroupName="/private/app")
    assert caught.value.response["Error"]["Code"] == "AccessDeniedException"
