"""The one error the policy language raises: a document AWS would refuse.

IAM answers ``MalformedPolicyDocument`` (HTTP 400) with a short English sentence naming the first
problem it found; the sentences in :mod:`.document` are AWS's own, so clients and tests that match
on them keep working.
"""

from __future__ import annotations

from minicloud.aws.errors import ClientError


class MalformedPolicyDocument(ClientError):
    code = "MalformedPolicyDocument"
    status = 400
