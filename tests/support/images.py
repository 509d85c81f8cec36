"""Base images for tests: built once (cached across sessions) and pushed into a test's server.

A module that needs, say, nginx in its server's registry imports the fixtures and asks::

    from tests.support.images import base_images, image_cache  # noqa: F401 - fixtures

    def test_x(server, base_images):
        refs = base_images.push(server, ["busybox", "nginx"])   # {"busybox": "127.0.0.1:p/library/busybox:latest", ...}

The build cache is ``MINICLOUD_IMAGE_CACHE`` when set, else minicloud's own default
(``~/.cache/minicloud/images``), so a machine builds each image once, not once per session;
a push of cached images sends only what the server lacks.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from minicloud.images import default_cache_dir, ensure_images
from tests.support.server import MinicloudServer

NEEDS = "images bootstrap needs root and mmdebstrap (scripts/install.sh installs it)"


def can_build() -> bool:
    return os.geteuid() == 0 and shutil.which("mmdebstrap") is not None


@dataclass(frozen=True)
class BaseImages:
    cache_dir: Path

    def push(self, server: MinicloudServer, names: list[str]) -> dict[str, str]:
        """Build what the cache lacks and push what ``server`` lacks; recipe name -> reference."""
        assert server.root is not None, "start the server first"
        keys = (server.root.access_key_id, server.root.secret_access_key)
        return asyncio.run(ensure_images(server.endpoint, keys, names, self.cache_dir))


@pytest.fixture(scope="session")
def image_cache() -> Path:
    configured = os.environ.get("MINICLOUD_IMAGE_CACHE")
    if configured:
        path = Path(configured).expanduser()
        path.mkdir(parents=True, exist_ok=True)
        return path
    # (not pytest's cache directory: `make test` runs without the cache provider)
    path = default_cache_dir()
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def base_images(image_cache: Path) -> BaseImages:
    if not can_build():
        pytest.skip(NEEDS)
    return BaseImages(image_cache)
