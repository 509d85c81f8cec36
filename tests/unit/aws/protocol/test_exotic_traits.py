"""Traits the core services do not use, on a small synthetic model: querystring maps (of strings
and of lists), JSON-value headers, header lists of timestamps and quoted strings, documents,
unions, and a recursive shape; round-tripped through botocore like the real services."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.model import ServiceModel

from tests.unit.aws.protocol.roundtrip import input_roundtrip, output_roundtrip

_SHAPES: dict[str, Any] = {
    "Str": {"type": "string"},
    "Int": {"type": "integer"},
    "Time": {"type": "timestamp"},
    "StrList": {"type": "list", "member": {"shape": "Str"}},
    "TimeList": {"type": "list", "member": {"shape": "Time"}},
    "StrMap": {"type": "map", "key": {"shape": "Str"}, "value": {"shape": "Str"}},
    "ListMap": {"type": "map", "key": {"shape": "Str"}, "value": {"shape": "StrList"}},
    "JsonStr": {"type": "string"},
    "Doc": {"type": "structure", "members": {}, "document": True},
    "Choice": {"type": "structure", "union": True,
               "members": {"Text": {"shape": "Str"}, "Number": {"shape": "Int"}}},
    "Node": {"type": "structure", "members": {"Name": {"shape": "Str"}, "Children": {"shape": "NodeList"}}},
    "NodeList": {"type": "list", "member": {"shape": "Node"}},
    "Input": {"type": "structure", "required": ["Id"], "members": {
        "Id": {"shape": "Str", "location": "uri", "locationName": "Id"},
        "Filters": {"shape": "ListMap", "location": "querystring"},
        "Tags": {"shape": "StrList", "location": "header", "locationName": "x-tags"},
        "Times": {"shape": "TimeList", "location": "header", "locationName": "x-times",
                  "timestampFormat": "iso8601"},
        "Context": {"shape": "JsonStr", "location": "header", "locationName": "x-context",
                    "jsonvalue": True},
        "Document": {"shape": "Doc"},
        "Choice": {"shape": "Choice"},
        "Tree": {"shape": "Node"},
    }},
    "MapInput": {"type": "structure", "members": {
        "Params": {"shape": "StrMap", "location": "querystring"},
        "Mode": {"shape": "Str", "location": "querystring", "locationName": "mode"},
    }},
    "Output": {"type": "structure", "members": {
        "Context": {"shape": "JsonStr", "location": "header", "locationName": "x-context",
                    "jsonvalue": True},
        "Document": {"shape": "Doc"},
        "Choice": {"shape": "Choice"},
        "Tree": {"shape": "Node"},
    }},
}

MODEL = ServiceModel({
    "metadata": {"apiVersion": "2020-01-01", "endpointPrefix": "exotic", "protocol": "rest-json",
                 "serviceId": "Exotic", "signatureVersion": "v4", "jsonVersion": "1.1",
                 "uid": "exotic-2020-01-01"},
    "operations": {
        "PutThing": {"name": "PutThing", "http": {"method": "PUT", "requestUri": "/things/{Id}"},
                     "input": {"shape": "Input"}, "output": {"shape": "Output"}},
        "Search": {"name": "Search", "http": {"method": "GET", "requestUri": "/search"},
                   "input": {"shape": "MapInput"}},
    },
    "shapes": _SHAPES,
}, service_name="exotic")

WHEN = datetime(2026, 11, 29, 5, 33, 50, tzinfo=UTC)


@pytest.mark.parametrize("params", [
    {"Id": "a/b c", "Filters": {"color": ["red", "blue"], "size": ["L"]}, "Tags": ["a", "b,c", 'd"e'],
     "Times": [WHEN], "Context": {"nested": [1, {"x": None}]}, "Document": {"any": ["json", 1.5, True]},
     "Choice": {"Number": 3}, "Tree": {"Name": "root", "Children": [{"Name": "leaf", "Children": []}]}},
    {"Id": "x", "Choice": {"Text": ""}},
])
def test_exotic_inputs_round_trip(params: dict[str, Any]) -> None:
    operation = MODEL.operation_model("PutThing")
    assert input_roundtrip(MODEL, operation, params, "rest-json") == ("PutThing", params)


def test_querystring_map_of_strings_takes_the_unclaimed_keys() -> None:
    operation = MODEL.operation_model("Search")
    params = {"Params": {"q": "x y", "page": "2"}, "Mode": "fast"}
    assert input_roundtrip(MODEL, operation, params, "rest-json") == ("Search", params)


def test_exotic_outputs_round_trip() -> None:
    operation = MODEL.operation_model("PutThing")
    result = {"Context": {"k": ["v"]}, "Document": {"free": {"form": None}}, "Choice": {"Text": "t"},
              "Tree": {"Name": "r", "Children": [{"Name": "c"}]}}
    status, parsed, _ = output_roundtrip(MODEL, operation, result, "rest-json")
    assert status == 200 and parsed == result
