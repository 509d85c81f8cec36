"""Transfer Acceleration: Put/GetBucketAccelerateConfiguration.

S3 Transfer Acceleration routes uploads through AWS's edge locations. On one machine there is
nothing to route: the state is stored and answered as S3 answers it, and changes nothing else.
"""

from __future__ import annotations

import json
from typing import Any

from minicloud.aws.context import RequestContext
from minicloud.services.s3 import store
from minicloud.services.s3.base import S3Base
from minicloud.services.s3.errors import InvalidRequest, MalformedXML

STATES = ("Enabled", "Suspended")


def check_status(bucket_name: str, config: dict[str, Any]) -> str:
    """The new state, or S3's error: a bucket whose name has a dot cannot be accelerated (its
    accelerated endpoint would be a host name that TLS certificates cannot cover)."""
    if "." in bucket_name:
        raise InvalidRequest("S3 Transfer Acceleration is not supported for buckets with periods (.) in their names")
    status = config.get("Status")
    if status not in STATES:
        raise MalformedXML()
    return str(status)


class AccelerateOperations(S3Base):
    async def put_bucket_accelerate_configuration(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = await self.bucket_for(ctx, params, "PutAccelerateConfiguration")
        status = check_status(bucket.name, params.get("AccelerateConfiguration") or {})
        text = json.dumps({"Status": status})
        await self.db.write(lambda conn: store.update_bucket(conn, bucket.name, accelerate=text))
        self.forget_bucket(bucket.name)
        return {}

    async def get_bucket_accelerate_configuration(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        """A bucket never configured has no state: an empty AccelerateConfiguration, not an error."""
        bucket = await self.bucket_for(ctx, params, "GetAccelerateConfiguration")
        config = bucket.config("accelerate") or {}
        return {"Status": config["Status"]} if config.get("Status") else {}
