"""The runtime images: recipes built offline from Debian's packages (``minicloud.images``), pushed
to minicloud's registry and pulled by the engine the first time a function needs them.

    python3.11       python3-minimal + the standard library + boto3 (as AWS's runtime has it)
    nodejs18.x       Debian bookworm's nodejs (18.x)
    provided.al2023  a minimal Debian base (sh, coreutils) for a custom ``bootstrap``

The runtime clients are not baked in: they are bind-mounted from this package at /var/runtime.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import Any

from minicloud.images import ImageConfig, Recipe, ensure_images, register

log = logging.getLogger("minicloud.lambda")
ECR_HOST = re.compile(r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com$")


@dataclass(frozen=True, slots=True)
class RuntimeImage:
    runtime: str
    recipe: Recipe

    @property
    def reference(self) -> str:  # a docker.io-style name: the engine pulls it from minicloud's registry
        return f"{self.recipe.repository}:{self.recipe.tags[0]}"


_CONFIG = ImageConfig(working_dir="/var/task")
RUNTIMES: dict[str, RuntimeImage] = {
    image.runtime: image for image in (
        RuntimeImage("python3.11", register(Recipe(
            name="lambda-python3.11", repository="minicloud/lambda-python", tags=("3.11",), base="debian-slim",
            packages=("python3-minimal", "libpython3.11-stdlib", "python3-boto3", "ca-certificates"),
            config=_CONFIG, description="Lambda python3.11: Debian's Python 3.11 with boto3"))),
        RuntimeImage("nodejs18.x", register(Recipe(
            name="lambda-nodejs18.x", repository="minicloud/lambda-nodejs", tags=("18",), base="debian-slim",
            packages=("nodejs", "ca-certificates"), config=_CONFIG,
            description="Lambda nodejs18.x: Debian bookworm's Node.js 18"))),
        RuntimeImage("provided.al2023", register(Recipe(
            name="lambda-provided.al2023", repository="minicloud/lambda-provided", tags=("al2023",),
            base="debian-slim", packages=("ca-certificates",), config=_CONFIG,
            description="Lambda provided.al2023: a minimal base (sh, coreutils) for a custom bootstrap"))),
    )
}
# Runtimes AWS still accepts for new functions that minicloud does not run: refused with a clear message.
KNOWN_RUNTIMES = frozenset({
    "nodejs20.x", "nodejs22.x", "nodejs16.x", "python3.8", "python3.9", "python3.10", "python3.12", "python3.13",
    "java8.al2", "java11", "java17", "java21", "dotnet6", "dotnet8", "ruby3.2", "ruby3.3", "provided.al2",
    "provided",
})


class ImageProvisioner:
    """Makes sure the engine has a runtime's image: already there, pulled from minicloud's registry,
    or built from its recipe and pushed there first (once; concurrent callers wait for the same build)."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime
        self._locks: dict[str, asyncio.Lock] = {}

    async def ensure(self, reference: str, recipe: Recipe | None) -> None:
        engine = self.runtime.engine
        if engine is None:
            raise RuntimeError("the container engine is not running")
        if engine.images.lookup(reference) is not None:
            return
        lock = self._locks.setdefault(reference, asyncio.Lock())
        async with lock:
            if engine.images.lookup(reference) is not None:
                return
            if recipe is None:  # a function's own image, in minicloud's registry: pulled as Lambda's service
                await self._pull_own(reference)
                return
            try:
                await engine.workloads.ensure_image(reference)
                return
            except Exception:
                pass
            keys = self.runtime.root_keys
            log.info("building the Lambda runtime image %s", recipe.name)
            await ensure_images(self.runtime.endpoint_url, (keys.access_key_id, keys.secret_access_key),
                                [recipe.name])
            await engine.workloads.ensure_image(reference)

    async def _pull_own(self, reference: str) -> None:
        from minicloud.engine.images.reference import parse
        from minicloud.engine.images.registry import Credentials

        keys = self.runtime.root_keys
        credentials = Credentials(keys.access_key_id, keys.secret_access_key)
        await self.runtime.engine.puller.pull(parse(reference), credentials, lambda _progress: None)

    def engine_reference(self, image_uri: str) -> str:
        """An image URI as the engine pulls it: ECR's host names (``<account>.dkr.ecr.<region>.amazonaws.com``)
        and ``localhost`` stand for minicloud's own registry."""
        host, slash, rest = image_uri.partition("/")
        own = f"127.0.0.1:{self.runtime.config.port}"
        if slash and (ECR_HOST.match(host) or host.split(":")[0] in ("localhost", "127.0.0.1")):
            return f"{own}/{rest}"
        return image_uri

    def registry_repository(self, image_uri: str) -> str | None:
        """The repository of minicloud's registry that the engine pulls ``image_uri`` from (with minicloud's
        own credentials: its own host names, and Docker Hub-style names through the registry mirror),
        or None for another registry or a malformed URI."""
        from minicloud.engine.errors import InvalidArgument
        from minicloud.engine.images.reference import DEFAULT_DOMAIN, parse

        try:
            reference = parse(self.engine_reference(image_uri))
        except InvalidArgument:
            return None
        own = f"127.0.0.1:{self.runtime.config.port}"
        return reference.path if reference.domain in (own, DEFAULT_DOMAIN) else None
