"""The S3 provider: every operation, one mixin per resource (see the package docstring)."""

from __future__ import annotations

from minicloud.services.s3.attributes import AttributeOperations
from minicloud.services.s3.buckets import BucketOperations
from minicloud.services.s3.cors import CorsOperations
from minicloud.services.s3.deletes import DeleteOperations
from minicloud.services.s3.events import NotificationOperations
from minicloud.services.s3.listing import ListingOperations
from minicloud.services.s3.multipart import MultipartOperations
from minicloud.services.s3.policies import PolicyOperations
from minicloud.services.s3.retention import LockOperations


class S3Provider(LockOperations, MultipartOperations, AttributeOperations, DeleteOperations, BucketOperations,
                 PolicyOperations, ListingOperations, NotificationOperations, CorsOperations):
    """Amazon S3 over minicloud's metadata store and replicated blob store."""
