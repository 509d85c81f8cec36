"""SSE-C keys over plain HTTP (review finding): accepted from loopback addresses and over a secure
connection, refused with S3's InvalidRequest from any other address."""

from __future__ import annotations

from typing import Any

import pytest

from minicloud.aws.request import AwsRequest
from minicloud.services.s3.errors import InvalidRequest
from minicloud.services.s3.transport import check_customer_key_transport

KEY = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": "a2V5", "SSECustomerKeyMD5": "bWQ1"}


def _request(client_ip: str, secure: bool = False) -> AwsRequest:
    return AwsRequest("PUT", "/bucket/key", client_ip=client_ip, secure=secure)


@pytest.mark.parametrize("client_ip", ["127.0.0.1", "127.44.0.9", "::1", "::ffff:127.0.0.1"])
def test_loopback_clients_may_send_a_key(client_ip: str) -> None:
    check_customer_key_transport(_request(client_ip), KEY)


@pytest.mark.parametrize("params", [KEY, {"CopySourceSSECustomerKey": "a2V5"}])
@pytest.mark.parametrize("client_ip", ["10.1.2.3", "192.0.2.7", "::ffff:10.0.0.1", "2001:db8::1", "not-an-ip"])
def test_a_key_in_the_clear_over_the_network_is_refused(client_ip: str, params: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest, match="must be made over a secure connection"):
        check_customer_key_transport(_request(client_ip), params)


def test_a_secure_connection_or_no_key() -> None:
    check_customer_key_transport(_request("10.1.2.3", secure=True), KEY)
    check_customer_key_transport(_request("10.1.2.3"), {"Bucket": "b", "Key": "k", "ServerSideEncryption": "AES256"})
