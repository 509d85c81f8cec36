"""IAM's error codes (query protocol; code and HTTP status as in the botocore model)."""

from __future__ import annotations

from minicloud.aws.errors import ClientError, ServiceError
from minicloud.iam.policy import MalformedPolicyDocument  # the policy language raises it

__all__ = ["MalformedPolicyDocument"]


class NoSuchEntity(ClientError):
    code = "NoSuchEntity"
    status = 404


class EntityAlreadyExists(ClientError):
    code = "EntityAlreadyExists"
    status = 409


class DeleteConflict(ClientError):
    code = "DeleteConflict"
    status = 409


class LimitExceeded(ClientError):
    code = "LimitExceeded"
    status = 409


class ConcurrentModification(ClientError):
    code = "ConcurrentModification"
    status = 409


class EntityTemporarilyUnmodifiable(ClientError):
    code = "EntityTemporarilyUnmodifiable"
    status = 409


class InvalidInput(ClientError):
    code = "InvalidInput"
    status = 400


class InvalidUserType(ClientError):
    code = "InvalidUserType"
    status = 400


class PasswordPolicyViolation(ClientError):
    code = "PasswordPolicyViolation"
    status = 400


class PolicyNotAttachable(ClientError):
    code = "PolicyNotAttachable"
    status = 400


class UnmodifiableEntity(ClientError):
    code = "UnmodifiableEntity"
    status = 400


class ServiceFailure(ServiceError):
    code = "ServiceFailure"
    status = 500


def quota(name: str, limit: int) -> LimitExceeded:
    """AWS's wording for a quota that a request would exceed."""
    return LimitExceeded(f"Cannot exceed quota for {name}: {limit}")
