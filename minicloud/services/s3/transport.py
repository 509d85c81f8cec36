"""Where an SSE-C key may travel. S3 refuses a customer-provided key sent over plain HTTP; minicloud
serves plain HTTP only, so it accepts one over a secure connection or from a loopback address (this
machine: the key never crosses a network) and refuses it, with S3's error, from anywhere else (a
``minicloud up --host`` other than loopback)."""

from __future__ import annotations

import ipaddress
from typing import Any

from minicloud.aws.request import AwsRequest
from minicloud.services.s3.errors import InvalidRequest

CUSTOMER_KEY_MEMBERS = ("SSECustomerKey", "CopySourceSSECustomerKey")


def check_customer_key_transport(request: AwsRequest, params: dict[str, Any]) -> None:
    """Raise S3's InvalidRequest when ``params`` carry a customer key that came over the network in the clear."""
    if params.get("SSECustomerKey") is None and params.get("CopySourceSSECustomerKey") is None:
        return  # CUSTOMER_KEY_MEMBERS, spelt out: every request passes here
    if request.secure or _loopback(request.client_ip):
        return
    raise InvalidRequest("Requests specifying Server Side Encryption with Customer provided keys must be made over "
                         "a secure connection.")


def _loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback
