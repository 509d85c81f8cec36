"""Requester Pays: Put/GetBucketRequestPayment, and its enforcement.

On a Requester Pays bucket, a request from outside the bucket owner's account must accept the
charges (``payer.check_requester_pays``, called by ``S3Base.authorize`` for every bucket it
authorizes against); a request it lets through has S3's ``x-amz-request-charged: requester`` in its
answer, for the operations whose answer declares that header. minicloud bills nothing, so the
charge itself is only that header.

The column ``request_payment`` holds ``{"Payer": "Requester"}`` or nothing (the owner pays), so
that the check costs the requests to other buckets one attribute test.
"""

from __future__ import annotations

from typing import Any

from minicloud.aws.context import RequestContext
from minicloud.aws.protocol.models import load_service_model
from minicloud.aws.provider import Handler
from minicloud.services.s3 import store
from minicloud.services.s3.base import S3Base
from minicloud.services.s3.errors import MalformedXML
from minicloud.services.s3.payer import CHARGED, PAYERS, REQUESTER_PAYS, requester_pays


def _declares_charge(operation_name: str) -> bool:
    """Whether the operation's answer has S3's x-amz-request-charged header (RequestCharged)."""
    model = load_service_model("s3")
    if operation_name not in model.operation_names:
        return False
    output = model.operation_model(operation_name).output_shape
    return output is not None and "RequestCharged" in output.members


class PaymentOperations(S3Base):
    async def put_bucket_request_payment(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = await self.bucket_for(ctx, params, "PutBucketRequestPayment")
        payer = (params.get("RequestPaymentConfiguration") or {}).get("Payer")
        if payer not in PAYERS:
            raise MalformedXML()
        text = REQUESTER_PAYS if payer == "Requester" else None
        await self.db.write(lambda conn: store.update_bucket(conn, bucket.name, request_payment=text))
        self.forget_bucket(bucket.name)
        return {}

    async def get_bucket_request_payment(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = await self.bucket_for(ctx, params, "GetBucketRequestPayment")
        return {"Payer": "Requester" if requester_pays(bucket) else "BucketOwner"}

    def handler(self, operation_name: str) -> Handler | None:
        """The operations whose answer can say ``x-amz-request-charged`` say it when the request
        was charged to its sender; the others are not wrapped."""
        inner = super().handler(operation_name)
        if inner is None or not _declares_charge(operation_name):
            return inner

        async def with_charge(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
            result = await inner(ctx, params)
            if CHARGED in ctx.extra:
                result = {**result, "RequestCharged": "requester"}
            return result
        return with_charge
