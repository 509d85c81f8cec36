"""Image recipes: what an image is made of (Debian packages on a base, files, commands) and how it
runs (its OCI config). A recipe is data; ``builder`` turns it into layers, ``push`` into a registry.

Recipes live in one registry, ``RECIPES``, keyed by name. The built-in ones (``library.py``) are the
base images users expect from Docker Hub; other parts of minicloud add theirs with ``register``::

    register(Recipe(name="ami-debian", repository="minicloud/ami-debian", tags=("bookworm",),
                    base="debian", packages=("openssh-server", "sudo"),
                    commands=("useradd --create-home --shell /bin/bash admin",)))
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
Kind = Literal["debian", "busybox"]


@dataclass(frozen=True, slots=True)
class File:
    """A file written into the image before its commands run."""

    path: str  # absolute, e.g. /usr/local/bin/docker-entrypoint.sh
    content: bytes
    mode: int = 0o644

    def __post_init__(self) -> None:
        if not self.path.startswith("/") or ".." in self.path.split("/"):
            raise ValueError(f"file path must be absolute and normalised: {self.path!r}")


@dataclass(frozen=True, slots=True)
class ImageConfig:
    """The runtime part of an OCI image config (``config`` in the image JSON)."""

    env: tuple[tuple[str, str], ...] = (("PATH", DEFAULT_PATH),)
    cmd: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    working_dir: str = ""
    user: str = ""
    exposed_ports: tuple[str, ...] = ()  # "80/tcp"
    volumes: tuple[str, ...] = ()
    stop_signal: str = ""
    labels: tuple[tuple[str, str], ...] = ()

    def to_oci(self) -> dict[str, object]:
        doc: dict[str, object] = {"Env": [f"{k}={v}" for k, v in self.env]}
        if self.entrypoint is not None:
            doc["Entrypoint"] = list(self.entrypoint)
        if self.cmd is not None:
            doc["Cmd"] = list(self.cmd)
        if self.working_dir:
            doc["WorkingDir"] = self.working_dir
        if self.user:
            doc["User"] = self.user
        if self.exposed_ports:
            doc["ExposedPorts"] = {port: {} for port in self.exposed_ports}
        if self.volumes:
            doc["Volumes"] = {path: {} for path in self.volumes}
        if self.stop_signal:
            doc["StopSignal"] = self.stop_signal
        if self.labels:
            doc["Labels"] = dict(self.labels)
        return doc


@dataclass(frozen=True, slots=True)
class Recipe:
    """One image. ``base`` names the recipe whose layers this one extends (its packages are
    installed on top of the base's root filesystem and only the difference becomes a new layer);
    without a base, ``kind`` says how the root filesystem starts: a Debian minbase (``slim``
    drops documentation, manuals and translations) or a busybox-static rootfs."""

    name: str
    repository: str  # in the registry, e.g. "library/debian"
    tags: tuple[str, ...]
    config: ImageConfig = field(default_factory=ImageConfig)
    base: str | None = None
    kind: Kind = "debian"
    slim: bool = False
    packages: tuple[str, ...] = ()
    files: tuple[File, ...] = ()
    commands: tuple[str, ...] = ()  # shell commands run in the image's root (chroot) after files
    description: str = ""

    def __post_init__(self) -> None:
        if not self.tags:
            raise ValueError(f"recipe {self.name} needs at least one tag")
        if self.base is not None and (self.kind != "debian" or self.slim):
            raise ValueError(f"recipe {self.name}: kind and slim come from its base")
        if self.kind == "busybox" and (self.packages or self.files or self.commands):
            raise ValueError(f"recipe {self.name}: a busybox recipe takes no packages, files or commands")

    def reference(self, host: str, tag: str | None = None) -> str:
        return f"{host}/{self.repository}:{tag or self.tags[0]}"

    def layer_inputs(self) -> dict[str, object]:
        """What the recipe's own layer depends on (its config does not)."""
        return {
            "kind": self.kind, "slim": self.slim, "packages": sorted(self.packages), "commands": list(self.commands),
            "files": [[f.path, f.mode, hashlib.sha256(f.content).hexdigest()] for f in self.files],
        }

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.layer_inputs(), sort_keys=True).encode()).hexdigest()


class RecipeError(ValueError):
    pass


RECIPES: dict[str, Recipe] = {}


def register(recipe: Recipe, *, replace: bool = False) -> Recipe:
    """Add a recipe; registering an identical one again is a no-op, a different one under the same
    name needs ``replace=True``."""
    existing = RECIPES.get(recipe.name)
    if existing is not None and existing != recipe and not replace:
        raise RecipeError(f"a different recipe named {recipe.name!r} is already registered")
    RECIPES[recipe.name] = recipe
    return recipe


def chain(name: str) -> list[Recipe]:
    """The recipe and its bases, the root first."""
    recipes: list[Recipe] = []
    current: str | None = name
    while current is not None:
        recipe = RECIPES.get(current)
        if recipe is None:
            raise RecipeError(f"unknown image {current!r} (known: {', '.join(sorted(RECIPES))})")
        if recipe in recipes:
            raise RecipeError(f"recipe {name!r} has a cycle in its bases")
        recipes.append(recipe)
        current = recipe.base
    return recipes[::-1]


def select(names: Iterable[str]) -> list[Recipe]:
    """Recipes by name, by repository (``debian`` or ``library/debian`` selects every debian
    recipe) or by ``repository:tag``; in the order asked, without duplicates."""
    chosen: list[Recipe] = []
    for raw in names:
        matches = _matches(raw)
        if not matches:
            raise RecipeError(f"unknown image {raw!r} (known: {', '.join(sorted(RECIPES))})")
        chosen.extend(m for m in matches if m not in chosen)
    return chosen


def _matches(raw: str) -> list[Recipe]:
    if raw in RECIPES:
        return [RECIPES[raw]]
    repo, _, tag = raw.partition(":")
    repos = {repo, f"library/{repo}"}
    return [r for r in RECIPES.values() if r.repository in repos and (not tag or tag in r.tags)]
