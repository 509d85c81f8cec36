"""Helpers shared by the pages: errors next to fields, statuses, names from paths."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from minicloud.console.calls import CallFailure


def paged(page_marker: str, params: dict[str, Any], name: str = "Marker") -> dict[str, Any]:
    """``params`` continuing from the marker the previous page handed out (IAM's Marker, ECR's nextToken)."""
    return {**params, name: page_marker} if page_marker else params


def next_marker(result: dict[str, Any] | None) -> str | None:
    """The marker of the next page, when the service says there is one."""
    result = result or {}
    if result.get("IsTruncated") and result.get("Marker"):
        return str(result["Marker"])
    token = result.get("nextToken") or result.get("NextMarker")
    return str(token) if token else None


def field_error(failure: CallFailure, field: str) -> dict[str, str]:
    """The service's error, to be shown next to the form field it is about."""
    return {field: f"{failure.code}: {failure.message}"}


def document_or_name(failure: CallFailure, document_field: str, name_field: str) -> str:
    """Which field of a create form an error is about: the policy document, or the name."""
    about_document = failure.code in ("MalformedPolicyDocument", "MalformedPolicyDocumentException") or (
        "document" in failure.message.lower() and "name" not in failure.message.lower())
    return document_field if about_document else name_field


def status_of(failure: CallFailure) -> int:
    return 403 if failure.denied else 400


def decode_document(text: str | None) -> str:
    """IAM returns policy documents URL-encoded, as the API does."""
    return unquote(text) if text else ""


EXAMPLE_POLICY = """{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Action": "s3:ListAllMyBuckets",
      "Resource": "*"
    }
  ]
}"""

EXAMPLE_TRUST_POLICY = """{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Principal": {"Service": "ec2.amazonaws.com"},
      "Action": "sts:AssumeRole"
    }
  ]
}"""
