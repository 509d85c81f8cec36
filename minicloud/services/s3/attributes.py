"""GetObjectAttributes: an object's ETag, size, storage class, checksums and parts, without its body."""

from __future__ import annotations

from typing import Any

from minicloud.aws.context import RequestContext
from minicloud.services.s3.errors import InvalidArgument
from minicloud.services.s3.objects import ObjectOperations, part_checksum
from minicloud.services.s3.uploads import checksum_members

_ATTRIBUTES = {"ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"}


class AttributeOperations(ObjectOperations):
    async def get_object_attributes(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        key, version_id = params["Key"], params.get("VersionId")
        wanted = set(params.get("ObjectAttributes") or [])
        unknown = wanted - _ATTRIBUTES
        if not wanted or unknown:
            raise InvalidArgument("Invalid attribute name specified.", ArgumentName="x-amz-object-attributes",
                                  ArgumentValue=",".join(sorted(unknown)) or "")
        action, read = (("GetObjectVersionAttributes", "GetObjectVersion") if version_id
                        else ("GetObjectAttributes", "GetObject"))
        bucket = await self.bucket_for(ctx, params, action, key)
        await self.authorize(ctx, read, bucket, key, version_id=version_id)  # S3 asks for both
        row = await self.find_object(ctx, bucket, key, version_id, action)
        await self.check_object(ctx, read, bucket, row)
        await self.read_key(params, row, ctx, decrypt=False)  # an SSE-C object needs its key (400 without)
        result: dict[str, Any] = {"LastModified": row.last_modified}
        if bucket.versioning:
            result["VersionId"] = row.version_id
        if "ETag" in wanted:
            result["ETag"] = row.etag.strip('"')
        if "ObjectSize" in wanted:
            result["ObjectSize"] = row.size
        if "StorageClass" in wanted:
            result["StorageClass"] = row.storage_class
        if "Checksum" in wanted:
            checksums = checksum_members(row.checksum_values())
            if checksums:
                result["Checksum"] = checksums
        if "ObjectParts" in wanted and row.parts:
            result["ObjectParts"] = _parts_page([size for _, size in row.segments()], params,
                                                row.checksum_values())
        return result


def _parts_page(sizes: list[int], params: dict[str, Any], checksums: dict[str, Any]) -> dict[str, Any]:
    marker = int(params.get("PartNumberMarker") or 0)
    limit = int(params.get("MaxParts") or 1000)
    numbered = [(number, size) for number, size in enumerate(sizes, start=1) if number > marker]
    page = numbered[:limit]
    truncated = len(numbered) > limit
    out: dict[str, Any] = {
        "TotalPartsCount": len(sizes), "PartNumberMarker": marker, "MaxParts": limit, "IsTruncated": truncated,
        "Parts": [{"PartNumber": number, "Size": size, **_member_only(part_checksum(checksums, number))}
                  for number, size in page],
    }
    if truncated and page:
        out["NextPartNumberMarker"] = page[-1][0]
    return out


def _member_only(members: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in members.items() if k != "ChecksumType"}
