"""Group the failures of an s3-tests run (compat/results/<name>/summary.json) by their known reason.

Every reason below was checked against S3's documented behaviour or the suite's own code; a failure
that matches none is printed as UNEXPLAINED.

    .venv/bin/python compat/s3tests/explain.py compat/results/final/summary.json
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict
from pathlib import Path

# (reason, regular expression over "file::test") — first match wins.
REASONS: list[tuple[str, str]] = [
    ("SSE-KMS without a key id: S3 uses the AWS managed key alias/aws/s3 (test expects an error)",
     r"test_sse_kms_no_key$"),
    ("default encryption: S3 reports SSE-S3 (AES256) on every bucket since 2023 (test expects "
     "ServerSideEncryptionConfigurationNotFoundError)",
     r"test_(get|delete)_bucket_encryption_(s3|kms)$"),
    ("SSE-C headers on CompleteMultipartUpload: S3 needs them only for uploads with a checksum (documented); "
     "the test expects RGW's 400 without them",
     r"test_copy_part_enc\[[^\]]*-sse-c-"),
    ("SSE-KMS, other", r"kms"),
    ("test harness cannot do what it means to: botocore re-signs/re-adds the Authorization, Content-Length "
     "or Date header the test removed or replaced (fails_on_rgw)",
     r"test_headers::test_(object|bucket)_create_bad_(authorization_(empty|none|incorrect_aws2|invalid_aws2)"
     r"|contentlength_none|date_none_aws2)$"),
    ("client sends more bytes than its Content-Length: the HTTP server rejects the leftover bytes as an invalid "
     "pipelined request before S3 could answer BadDigest (fails_on_rgw)",
     r"test_object_create_bad_contentlength_mismatch_below_aws2"),
    ("RGW-only extensions (usage stats, x-rgw-object-count, allow-unordered, tenants, torrent)",
     r"test_(account_usage|head_bucket_usage|bucket_head_extended|bucket_list(v2)?_unordered"
     r"|bucket_policy_(different_tenant|tenanted_bucket)|get_object_torrent|cors_presigned_\w+_tenant_v2"
     r"|get_nonpublicpolicy_principal_bucket_policy_status|block_public_policy_with_principal)"),
    ("expects RGW's order of grants or RGW's acceptance of grants S3 refuses (fails_on_aws: x-amz-grant-write "
     "on objects; a given grant order re-sorted)",
     r"test_(object_header_acl_grants|bucket_header_acl_grants|put_bucket_acl_grant_group_read)$"),
    ("re-creating one's own bucket in us-east-1: S3 answers 200 (test expects 409 BucketAlreadyExists)",
     r"test_bucket_recreate_(overwrite|new)_acl"),
    ("LocationConstraint us-east-1 is refused by S3 (InvalidLocationConstraint); the test uses api_name us-east-1",
     r"test_bucket_get_location$"),
    ("GetObject PartNumber out of range: S3 answers 416 InvalidPartNumber (test expects RGW's 400 InvalidPart)",
     r"test_(multipart|non_multipart|multipart_single|multipart_sse_c|non_multipart_sse_c)_get_part$"),
    ("SSE-C with the wrong key: S3 answers 403 (test expects 400)",
     r"test_encryption_sse_c_(other_key|multipart_bad_download)$"),
    ("default encryption: S3 reports SSE-S3 (AES256) on every bucket since 2023 (test expects "
     "ServerSideEncryptionConfigurationNotFoundError)",
     r"test_(get|delete)_bucket_encryption_s3$"),
    ("lifecycle Filter with Prefix and Tag/size side by side is MalformedXML on S3 (fails_on_aws: RGW accepts it)",
     r"test_lifecycle_(expiration_(tags1|tags2|versioned_tags2|noncur_tags1|size_gt|size_lt)"
     r"|deletemarker_expiration_with_days_tag)$"),
    ("storage-class transitions are not implemented (NotImplemented 501 where the test wants a 400 for a bad date)",
     r"test_lifecycle_transition_set_invalid_date"),
    ("x-amz-delete-marker: false on a 404: S3 omits the header when false (documented)",
     r"test_delete_marker_(nonversioned|expiration)$"),
    ("presigned X-Amz-Expires negative or over a week: S3 answers 400 AuthorizationQueryParametersError "
     "(test expects 403)",
     r"test_object_raw_(get_x_amz_expires_out_(max|positive)_range|put_authenticated_expired)$"),
    ("malformed x-amz-checksum value: S3 answers 400 'Value for x-amz-checksum-... header is invalid' "
     "(test expects BadDigest)",
     r"test_object_checksum_(sha256|crc64nvme)$"),
    ("Expect: 100-continue: the server reads bodies under its streaming threshold before the handler can refuse "
     "(needs a one-line change in minicloud/server/asgi.py, the lead's)",
     r"test_100_continue$"),
    ("Transfer-Encoding: chunked without aws-chunked: minicloud answers 411 MissingContentLength",
     r"test_object_write_with_chunked_transfer_encoding"),
    ("anonymous ListBuckets: S3 refuses it (fails_on_aws)", r"test_list_buckets_anonymous"),
    ("CORS on a non-preflight request with Access-Control-Request-Method: RGW applies it, S3 uses the method",
     r"test_cors_origin_response$"),
    ("SigV2 presigned URLs with CORS: the test's own URL signing for a v2 client (fails_on_rgw)",
     r"test_cors_presigned_(get|put)_object_v2$"),
    ("non-ASCII header value: botocore signs it as UTF-8 text, http.client sends it as Latin-1 (fails_on_rgw)",
     r"test_object_set_get_unicode_metadata"),
    ("reading an object with an unreadable (\\x0a) name: test expects RGW's 400 (fails_on_rgw)",
     r"test_object_read_unreadable"),
    ("SSE-C headers on CompleteMultipartUpload: S3 needs them only for uploads with a checksum (documented); "
     "the test expects RGW's 400 without them",
     r"test_copy_part_enc\[[^\]]*-sse-c-"),
    ("object ownership: minicloud lets the bucket owner's root read an ACL of an object another account wrote "
     "(S3: only the object owner or a grantee) - not done",
     r"test_bucket_policy_put_obj_grant$"),
    ("duplicate part numbers in CompleteMultipartUpload: minicloud answers InvalidPartOrder",
     r"test_multipart_resend_first_finishes_last$"),
    ("test bug: the x-amz-tagging header is registered on the main client, the request made by alt "
     "(fails_on_rgw)",
     r"test_bucket_policy_put_obj_request_obj_tag$"),
    ("an unmet Allow condition does not deny the bucket owner's own request (S3 evaluates its identity too); "
     "the test expects 403 (fails_on_rgw)",
     r"test_bucket_policy_set_condition_operator_end_with_IfExists$"),
]


def main() -> int:
    summary = json.loads(Path(sys.argv[1]).read_text())
    groups: dict[str, list[str]] = defaultdict(list)
    for failure in summary["failures"]:
        name = failure["test"]
        reason = next((r for r, pattern in REASONS if re.search(pattern, name)), "UNEXPLAINED")
        groups[reason].append(f"{name}  {failure['message'][:120]}")
    print(f"passed {summary['passed']}, failed {summary['failed']}, error {summary['error']}")
    for reason, names in sorted(groups.items(), key=lambda item: (item[0] == "UNEXPLAINED", -len(item[1]))):
        print(f"\n{len(names):3d}  {reason}")
        for name in names:
            print(f"       {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
