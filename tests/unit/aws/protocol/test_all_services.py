"""Every operation of every service botocore knows (445 services, ~22,000 operations), one sample
each way, every member set. Slower than the rest of the suite (~40 s): run it with
MINICLOUD_PROTOCOL_ALL_SERVICES=1.

Known, accepted differences (model quirks, not protocol bugs) are listed in ``_QUIRKS``.
"""

from __future__ import annotations

import os

import botocore.session
import pytest

from minicloud.aws.protocol.models import load_service_model, service_protocols
from minicloud.aws.protocol.parsers import create_parser
from tests.unit.aws.protocol.roundtrip import event_stream_free, input_roundtrip, output_roundtrip
from tests.unit.aws.protocol.shapegen import operation_ctx, sample

if not os.environ.get("MINICLOUD_PROTOCOL_ALL_SERVICES"):
    pytest.skip("set MINICLOUD_PROTOCOL_ALL_SERVICES=1 to run", allow_module_level=True)

# Output members of 204 responses (HTTP allows no body), and a header map with an empty prefix
# (botocore files every response header under it).
_QUIRKS = {("billingconductor", "ListTagsForResource"), ("chime", "PutRetentionSettings"),
           ("dataexchange", "SendApiAsset"), ("lexv2-models", "DeleteResourcePolicy"),
           ("lexv2-models", "DeleteResourcePolicyStatement"), ("quicksight", "DeleteSpace")}

SERVICES = botocore.session.get_session().get_available_services()


@pytest.mark.parametrize("service", SERVICES)
def test_every_operation_of_every_service(service: str) -> None:
    model = load_service_model(service)
    for protocol in service_protocols(model):
        shadowed: set[str] = set()
        if protocol in ("rest-json", "rest-xml"):
            shadowed = set(create_parser(model, protocol).router.shadowed())  # type: ignore[attr-defined]
        for name in model.operation_names:
            operation = model.operation_model(name)
            if event_stream_free(operation, "in") and name not in shadowed:
                shape = operation.input_shape
                params = sample(shape, operation_ctx(operation, protocol, "in")) if shape else {}
                assert input_roundtrip(model, operation, params, protocol) == (name, params), name
            if event_stream_free(operation, "out") and (service, name) not in _QUIRKS:
                shape = operation.output_shape
                result = sample(shape, operation_ctx(operation, protocol, "out")) if shape else {}
                status, parsed, _ = output_roundtrip(model, operation, result, protocol)
                assert status < 300 and parsed == result, name
