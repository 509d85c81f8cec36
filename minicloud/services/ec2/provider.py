"""Amazon EC2 (ec2 protocol): the provider records desired state; ``InstanceController`` converges."""

from __future__ import annotations

import os

from minicloud.aws.provider import Provider
from minicloud.runtime import Runtime
from minicloud.services.ec2.addresses import AddressesMixin
from minicloud.services.ec2.controller import InstanceController
from minicloud.services.ec2.defaults import DefaultVpcs
from minicloud.services.ec2.errors import UnauthorizedOperation
from minicloud.services.ec2.images import ImagesMixin
from minicloud.services.ec2.instances import InstancesMixin
from minicloud.services.ec2.interfaces import InterfacesMixin
from minicloud.services.ec2.keypairs import KeyPairsMixin
from minicloud.services.ec2.metadata import Ec2InstanceMetadata
from minicloud.services.ec2.regions import RegionsMixin
from minicloud.services.ec2.routing import RoutingMixin
from minicloud.services.ec2.security_groups import SecurityGroupsMixin
from minicloud.services.ec2.settings import Ec2Settings
from minicloud.services.ec2.tags import TagsMixin
from minicloud.services.ec2.vpcs import VpcsMixin


class Ec2Provider(RegionsMixin, VpcsMixin, RoutingMixin, SecurityGroupsMixin, TagsMixin, KeyPairsMixin,
                  InstancesMixin, ImagesMixin, AddressesMixin, InterfacesMixin, Provider):
    service_name = "ec2"
    access_denied = UnauthorizedOperation

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings = Ec2Settings.from_environ(os.environ)
        self.defaults = DefaultVpcs(runtime.db, runtime.topology)
        self.metadata = Ec2InstanceMetadata(runtime.db, runtime.topology, self.settings.credentials_ttl)
        self.controller = InstanceController(runtime, self.settings, self.metadata)
        runtime.controllers.append(self.controller)

    def wake_controller(self) -> None:
        self.controller.wake()

    async def stop(self) -> None:
        await self.controller.close()
