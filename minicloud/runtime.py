"""The core pieces every service is built from, created once by ``minicloud up``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from minicloud.config import Config
from minicloud.controllers.runner import Controller
from minicloud.iam.accounts import RootKeys
from minicloud.iam.authorizer import Authorizer
from minicloud.iam.credentials import CredentialStore
from minicloud.storage.metadata.db import Database
from minicloud.topology import Topology


@dataclass
class Runtime:
    config: Config
    topology: Topology
    db: Database
    credentials: CredentialStore
    authorizer: Authorizer
    root_keys: RootKeys
    controllers: list[Controller] = field(default_factory=list)
    # The container engine (minicloud.engine.service.Engine), once `minicloud up` has started it;
    # None when disabled or failed. Controllers use ``engine.workloads``; providers never run processes.
    engine: Any = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.config.host}:{self.config.port}"
