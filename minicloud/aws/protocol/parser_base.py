"""The request parser contract shared by every protocol.

``parse`` never lets anything but a ``ServiceError`` escape: decoders raise ``ValueError`` /
``FieldError``, which become the protocol's own error; anything unexpected is logged and
answered as a malformed request.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any

from botocore.model import OperationModel, ServiceModel

from minicloud.aws.errors import ServiceError
from minicloud.aws.protocol.decoders import FieldError
from minicloud.aws.protocol.wire_errors import malformed_body, malformed_value
from minicloud.aws.request import AwsRequest

log = logging.getLogger("minicloud.aws.protocol")

# The wire protocol of the request being handled, set by every parser: a service that speaks
# several protocols (CloudWatch: CBOR, JSON and query) answers in the one it was asked in.
current_protocol: ContextVar[str | None] = ContextVar("minicloud_wire_protocol", default=None)


class RequestParser:
    """Turns an ``AwsRequest`` into the addressed operation and its typed input parameters."""

    protocol: str = ""

    def __init__(self, service_model: ServiceModel, protocol: str | None = None) -> None:
        self.service_model = service_model
        if protocol is not None:
            self.protocol = protocol
        self._operations: dict[str, OperationModel] = {
            name: service_model.operation_model(name) for name in service_model.operation_names
        }

    def parse(self, request: AwsRequest) -> tuple[OperationModel, dict[str, Any]]:
        current_protocol.set(self.protocol)
        try:
            return self._parse(request)
        except ServiceError:
            raise
        except FieldError as exc:
            raise malformed_value(self.protocol, f"{exc.message} (at '{exc.location}')") from None
        except RecursionError:
            raise malformed_body(self.protocol, "The request is nested too deeply.") from None
        except (ValueError, OverflowError) as exc:  # bad encodings, numbers, dates...
            raise malformed_body(self.protocol, f"The request could not be read: {exc}") from None
        except Exception as exc:  # the contract: nothing but a ServiceError leaves parse()
            log.warning("unexpected error parsing a %s request", self.protocol, exc_info=True)
            raise malformed_body(self.protocol, "The request could not be read.") from exc

    def _parse(self, request: AwsRequest) -> tuple[OperationModel, dict[str, Any]]:
        raise NotImplementedError
