"""Request authentication for the AWS APIs: Signature Version 4.

    sigv4.py     parse_auth, verify: header and presigned-query signatures
    chunked.py   ChunkedPayloadDecoder: S3's aws-chunked upload bodies, chunk by chunk
    failures.py  AuthFailure(kind, message): why a request does not authenticate
    errors.py    auth_error: the exact AWS error for a failure, per protocol family

``minicloud.aws.sigv4`` re-exports the whole public API.
"""
