"""ECR's error codes (JSON protocol, all HTTP 400 as the botocore model declares them)."""

from __future__ import annotations

from minicloud.aws.errors import ClientError


class AccessDeniedException(ClientError):
    code = "AccessDeniedException"


class InvalidParameterException(ClientError):
    code = "InvalidParameterException"


class InvalidTagParameterException(ClientError):
    code = "InvalidTagParameterException"


class TooManyTagsException(ClientError):
    code = "TooManyTagsException"


class RepositoryNotFoundException(ClientError):
    code = "RepositoryNotFoundException"


class RepositoryAlreadyExistsException(ClientError):
    code = "RepositoryAlreadyExistsException"


class RepositoryNotEmptyException(ClientError):
    code = "RepositoryNotEmptyException"


class RepositoryPolicyNotFoundException(ClientError):
    code = "RepositoryPolicyNotFoundException"


class LifecyclePolicyNotFoundException(ClientError):
    code = "LifecyclePolicyNotFoundException"


class ImageNotFoundException(ClientError):
    code = "ImageNotFoundException"


class ImageAlreadyExistsException(ClientError):
    code = "ImageAlreadyExistsException"


class ImageTagAlreadyExistsException(ClientError):
    code = "ImageTagAlreadyExistsException"


class ImageDigestDoesNotMatchException(ClientError):
    code = "ImageDigestDoesNotMatchException"


class LayersNotFoundException(ClientError):
    code = "LayersNotFoundException"


class ReferencedImagesNotFoundException(ClientError):
    code = "ReferencedImagesNotFoundException"


class ValidationException(ClientError):
    code = "ValidationException"


class UploadNotFoundException(ClientError):
    code = "UploadNotFoundException"


class InvalidLayerPartException(ClientError):
    code = "InvalidLayerPartException"


class InvalidLayerException(ClientError):
    code = "InvalidLayerException"


class EmptyUploadException(ClientError):
    code = "EmptyUploadException"


class LayerAlreadyExistsException(ClientError):
    code = "LayerAlreadyExistsException"
