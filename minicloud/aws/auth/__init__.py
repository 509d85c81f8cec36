"""Request authentication for the AWS APIs: Signature Version 4.

    sigv4.py     parse_auth, verify: header and presigned-query signatures
    canonical.py the canonical request (URI, query, headers) of SigV4
    sigv2.py     S3's legacy SigV2 (what boto3/aws-cli presign with in us-east-1 by default)
    chunked.py   ChunkedPayloadDecoder: S3's aws-chunked upload bodies, chunk by chunk
    failures.py  AuthFailure(kind, message): why a request does not authenticate
    errors.py    auth_error: the exact AWS error for a failure, per protocol family

``minicloud.aws.sigv4`` re-exports the whole public API.
"""
