"""S3's error codes, each with the HTTP status S3 answers it with."""

from __future__ import annotations

from minicloud.aws.errors import ClientError, ServiceError
from minicloud.aws.protocol.wire_errors import (
    InvalidArgument,
    InvalidRequest,
    MalformedXML,
    MethodNotAllowed,
    MissingRequestBodyError,
)

__all__ = ["InvalidArgument", "InvalidRequest", "MalformedXML", "MethodNotAllowed",
           "MissingRequestBodyError"]


class AccessDenied(ClientError):
    code = "AccessDenied"
    status = 403


class NoSuchBucket(ClientError):
    code = "NoSuchBucket"
    status = 404


class NoSuchKey(ClientError):
    code = "NoSuchKey"
    status = 404


class NoSuchVersion(ClientError):
    code = "NoSuchVersion"
    status = 404


class NoSuchUpload(ClientError):
    code = "NoSuchUpload"
    status = 404


class NoSuchBucketPolicy(ClientError):
    code = "NoSuchBucketPolicy"
    status = 404


class NoSuchTagSet(ClientError):
    code = "NoSuchTagSet"
    status = 404


class NoSuchCORSConfiguration(ClientError):
    code = "NoSuchCORSConfiguration"
    status = 404


class NoSuchWebsiteConfiguration(ClientError):
    code = "NoSuchWebsiteConfiguration"
    status = 404


class IncorrectEndpoint(ClientError):
    """A website endpoint of another region than the bucket's."""

    code = "IncorrectEndpoint"


class InvalidRedirectLocation(ClientError):
    code = "InvalidRedirectLocation"


class BucketAlreadyExists(ClientError):
    code = "BucketAlreadyExists"
    status = 409


class BucketAlreadyOwnedByYou(ClientError):
    code = "BucketAlreadyOwnedByYou"
    status = 409


class BucketNotEmpty(ClientError):
    code = "BucketNotEmpty"
    status = 409


class InvalidBucketName(ClientError):
    code = "InvalidBucketName"


class KeyTooLongError(ClientError):
    code = "KeyTooLongError"


class BadDigest(ClientError):
    code = "BadDigest"


class InvalidDigest(ClientError):
    code = "InvalidDigest"


class InvalidRange(ClientError):
    code = "InvalidRange"
    status = 416


class InvalidPartNumber(ClientError):
    code = "InvalidPartNumber"
    status = 416


class PreconditionFailed(ClientError):
    code = "PreconditionFailed"
    status = 412


class NotModified(ClientError):
    code = "NotModified"
    status = 304


class EntityTooLarge(ClientError):
    code = "EntityTooLarge"


class EntityTooSmall(ClientError):
    code = "EntityTooSmall"


class InvalidPart(ClientError):
    code = "InvalidPart"


class InvalidPartOrder(ClientError):
    code = "InvalidPartOrder"


class MalformedPolicy(ClientError):
    code = "MalformedPolicy"


class InvalidLocationConstraint(ClientError):
    code = "InvalidLocationConstraint"


class IllegalLocationConstraintException(ClientError):
    code = "IllegalLocationConstraintException"


class InvalidTag(ClientError):
    code = "InvalidTag"


class IllegalVersioningConfiguration(ClientError):
    code = "IllegalVersioningConfigurationException"


class InvalidStorageClass(ClientError):
    code = "InvalidStorageClass"


class OperationAborted(ClientError):
    code = "OperationAborted"
    status = 409


class ServiceUnavailable(ServiceError):
    code = "ServiceUnavailable"
    status = 503


class SlowDown(ServiceError):
    code = "SlowDown"
    status = 503


class InternalError(ServiceError):
    code = "InternalError"
    status = 500


class BadRequest(ClientError):
    code = "BadRequest"


class CORSResponse(ClientError):
    code = "CORSResponse"
    status = 403


class AccessControlListNotSupported(ClientError):
    code = "AccessControlListNotSupported"


class MalformedACLError(ClientError):
    code = "MalformedACLError"


class UnresolvableGrantByEmailAddress(ClientError):
    code = "UnresolvableGrantByEmailAddress"


class InvalidBucketAclWithObjectOwnership(ClientError):
    code = "InvalidBucketAclWithObjectOwnership"


class OwnershipControlsNotFoundError(ClientError):
    code = "OwnershipControlsNotFoundError"
    status = 404


class NoSuchPublicAccessBlockConfiguration(ClientError):
    code = "NoSuchPublicAccessBlockConfiguration"
    status = 404


class NoSuchLifecycleConfiguration(ClientError):
    code = "NoSuchLifecycleConfiguration"
    status = 404


class InvalidAccessKeyId(ClientError):
    code = "InvalidAccessKeyId"
    status = 403


class SignatureDoesNotMatch(ClientError):
    code = "SignatureDoesNotMatch"
    status = 403


class InvalidPolicyDocument(ClientError):
    code = "InvalidPolicyDocument"


class MalformedPOSTRequest(ClientError):
    code = "MalformedPOSTRequest"


class InvalidRetentionPeriod(ClientError):
    code = "InvalidRetentionPeriod"


class InvalidBucketState(ClientError):
    code = "InvalidBucketState"
    status = 409


class NoSuchObjectLockConfiguration(ClientError):
    code = "NoSuchObjectLockConfiguration"
    status = 404


class ObjectLockConfigurationNotFoundError(ClientError):
    code = "ObjectLockConfigurationNotFoundError"
    status = 404


class InvalidEncryptionAlgorithmError(ClientError):
    code = "InvalidEncryptionAlgorithmError"


class InvalidTargetBucketForLogging(ClientError):
    code = "InvalidTargetBucketForLogging"


class CrossLocationLoggingProhibitted(ClientError):  # (S3's spelling)
    code = "CrossLocationLoggingProhibitted"
    status = 403


class NotImplementedFeature(ServiceError):
    code = "NotImplemented"
    status = 501


class ReplicationConfigurationNotFoundError(ClientError):
    code = "ReplicationConfigurationNotFoundError"
    status = 404


class InvalidObjectState(ClientError):
    """An archived (GLACIER, DEEP_ARCHIVE) object read or copied before it is restored, or a
    restore of an object that is not archived."""

    code = "InvalidObjectState"
    status = 403


class ObjectAlreadyInActiveTierError(ClientError):
    code = "ObjectAlreadyInActiveTierError"
    status = 403


class RestoreAlreadyInProgress(ClientError):
    code = "RestoreAlreadyInProgress"
    status = 409


class NoSuchConfiguration(ClientError):
    code = "NoSuchConfiguration"
    status = 404


class IdMismatch(ClientError):
    code = "IdMismatch"


class InvalidS3DestinationBucket(ClientError):
    code = "InvalidS3DestinationBucket"


class TooManyConfigurations(ClientError):
    code = "TooManyConfigurations"
