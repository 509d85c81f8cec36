"""The S3 provider: every operation, one mixin per resource (see the package docstring)."""

from __future__ import annotations

from minicloud.aws.request import AwsRequest
from minicloud.runtime import Runtime
from minicloud.services.s3.accelerate import AccelerateOperations
from minicloud.services.s3.access_logs import AccessLogOperations
from minicloud.services.s3.addressing import readdress
from minicloud.services.s3.attributes import AttributeOperations
from minicloud.services.s3.bucket_logging import LoggingOperations
from minicloud.services.s3.buckets import BucketOperations
from minicloud.services.s3.cors import CorsOperations
from minicloud.services.s3.deletes import DeleteOperations
from minicloud.services.s3.events import NotificationOperations
from minicloud.services.s3.expiry import LifecycleController
from minicloud.services.s3.inventory import InventoryOperations
from minicloud.services.s3.inventory_report import InventoryController, InventoryDelivery
from minicloud.services.s3.lifecycle import LifecycleOperations
from minicloud.services.s3.listing import ListingOperations
from minicloud.services.s3.multipart import MultipartOperations
from minicloud.services.s3.payment import PaymentOperations
from minicloud.services.s3.permissions import AclOperations
from minicloud.services.s3.policies import PolicyOperations
from minicloud.services.s3.post import PostOperations
from minicloud.services.s3.replication import ReplicationOperations
from minicloud.services.s3.restore import RestoreController, RestoreOperations
from minicloud.services.s3.retention import LockOperations
from minicloud.services.s3.scrub import ScrubController, interval_from_environment
from minicloud.services.s3.website import WebsiteOperations


class S3Provider(PostOperations, AccessLogOperations, AclOperations, LockOperations, MultipartOperations,
                 AttributeOperations, RestoreOperations, DeleteOperations, BucketOperations, PolicyOperations,
                 ListingOperations, NotificationOperations, CorsOperations, LifecycleOperations,
                 ReplicationOperations, AccelerateOperations, PaymentOperations, LoggingOperations,
                 WebsiteOperations, InventoryOperations, InventoryDelivery):
    """Amazon S3 over minicloud's metadata store and replicated blob store."""

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        runtime.controllers.append(LifecycleController(self.db, self.release, runtime.config.lifecycle_day_seconds,
                                                       widen=self.widen))
        runtime.controllers.append(RestoreController(self.db, runtime.config.lifecycle_day_seconds,
                                                     runtime.config.s3_restore_seconds))
        runtime.controllers.append(InventoryController(self, runtime.config.lifecycle_day_seconds,
                                                       runtime.config.s3_inventory_rows_per_file))
        runtime.controllers.append(ScrubController(self.db, self.data, interval_from_environment()))
        if runtime.config.controllers:  # (else, as in S3 workers, the provider delivers its own access logs)
            runtime.controllers.append(self.access_log_controller)

    def readdress(self, request: AwsRequest) -> None:
        readdress(request)
