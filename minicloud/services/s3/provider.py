"""The S3 provider: every operation, one mixin per resource (see the package docstring)."""

from __future__ import annotations

from minicloud.aws.request import AwsRequest
from minicloud.runtime import Runtime
from minicloud.services.s3.addressing import readdress
from minicloud.services.s3.attributes import AttributeOperations
from minicloud.services.s3.buckets import BucketOperations
from minicloud.services.s3.cors import CorsOperations
from minicloud.services.s3.deletes import DeleteOperations
from minicloud.services.s3.events import NotificationOperations
from minicloud.services.s3.expiry import LifecycleController, day_seconds_from_environment
from minicloud.services.s3.lifecycle import LifecycleOperations
from minicloud.services.s3.listing import ListingOperations
from minicloud.services.s3.multipart import MultipartOperations
from minicloud.services.s3.permissions import AclOperations
from minicloud.services.s3.policies import PolicyOperations
from minicloud.services.s3.post import PostOperations
from minicloud.services.s3.retention import LockOperations
from minicloud.services.s3.scrub import ScrubController, interval_from_environment
from minicloud.services.s3.website import WebsiteOperations


class S3Provider(PostOperations, AclOperations, LockOperations, MultipartOperations, AttributeOperations,
                 DeleteOperations, BucketOperations, PolicyOperations, ListingOperations, NotificationOperations,
                 CorsOperations, LifecycleOperations, WebsiteOperations):
    """Amazon S3 over minicloud's metadata store and replicated blob store."""

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        runtime.controllers.append(LifecycleController(self.db, self.release, day_seconds_from_environment()))
        runtime.controllers.append(ScrubController(self.db, self.data, interval_from_environment()))

    def readdress(self, request: AwsRequest) -> None:
        readdress(request)
