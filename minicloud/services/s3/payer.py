"""Requester Pays enforcement, as ``S3Base.authorize`` asks it (see ``payment.py``).

On a Requester Pays bucket, a request from outside the bucket owner's account must say that its
sender accepts the charges (``x-amz-request-payer: requester``, or the same query parameter in a
presigned URL), else S3 answers 403 AccessDenied; an anonymous request is always refused (there is
no one to charge). A request let through is marked (``CHARGED``) for its answer to carry S3's
``x-amz-request-charged: requester``.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

from minicloud.aws.context import RequestContext
from minicloud.iam.identity import PrincipalKind
from minicloud.services.s3.errors import AccessDenied
from minicloud.services.s3.store import Bucket

PAYERS = ("BucketOwner", "Requester")
REQUESTER_PAYS = json.dumps({"Payer": "Requester"})
CHARGED = "s3.request_charged"  # ctx.extra: the requester accepted the charges of this request


def requester_pays(bucket: Bucket) -> bool:
    return bool(bucket.request_payment) and (bucket.config("request_payment") or {}).get("Payer") == "Requester"


def _payer_given(ctx: RequestContext) -> str | None:
    header = ctx.request.headers.get("x-amz-request-payer")
    if header is not None:
        return header
    if "request-payer" in ctx.request.query:  # a presigned URL carries it as a query parameter
        for name, value in parse_qsl(ctx.request.query, keep_blank_values=True):
            if name.lower() == "x-amz-request-payer":
                return value
    return None


def check_requester_pays(ctx: RequestContext, bucket: Bucket) -> None:
    """For a request to a bucket with ``request_payment`` set, from outside the owner's account."""
    if not requester_pays(bucket):
        return
    if ctx.principal.kind is PrincipalKind.ANONYMOUS:
        raise AccessDenied("Access Denied")
    payer = _payer_given(ctx)
    if payer is None or payer.strip().lower() != "requester":
        raise AccessDenied("Access Denied")
    ctx.extra[CHARGED] = True
