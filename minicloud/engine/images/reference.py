"""Image references, parsed and normalised the way Docker does it.

``busybox`` -> ``docker.io/library/busybox:latest``; ``localhost:5000/app@sha256:...`` keeps its
registry host and port; a reference with only a digest gets no default tag.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from minicloud.engine.errors import InvalidArgument

DEFAULT_DOMAIN = "docker.io"
DEFAULT_TAG = "latest"
_LEGACY_DOMAINS = ("index.docker.io", "registry-1.docker.io")

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?"
_PATH = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_DOMAIN_RE = re.compile(rf"^{_DOMAIN}$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}$")
_ID = re.compile(r"^(?:sha256:)?[a-f0-9]{64}$")


@dataclass(frozen=True, slots=True)
class Reference:
    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def repository(self) -> str:
        """``docker.io/library/busybox``"""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_repository(self) -> str:
        """``busybox`` for Docker Hub's library images, else the full repository."""
        if self.domain == DEFAULT_DOMAIN:
            return self.path.removeprefix("library/")
        return self.repository

    def __str__(self) -> str:
        text = self.repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    def familiar(self) -> str:
        text = self.familiar_repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    def with_tag(self, tag: str) -> Reference:
        if not _TAG.match(tag):
            raise InvalidArgument(f"invalid tag format: {tag!r}")
        return Reference(self.domain, self.path, tag, None)


def parse(text: str, *, default_tag: bool = True) -> Reference:
    """Parse and normalise; raise ``InvalidArgument`` with Docker's wording when malformed."""
    if not text or text != text.strip():
        raise InvalidArgument(f"invalid reference format: {text!r}")
    remainder, digest = text, None
    if "@" in remainder:
        remainder, digest = remainder.split("@", 1)
        if not _DIGEST.match(digest):
            raise InvalidArgument(f"invalid reference format: {text}")
    name, tag = remainder, None
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1:]
        if not _TAG.match(tag):
            raise InvalidArgument(f"invalid reference format: {text}")
    domain, path = _split_domain(name, text)
    if len(domain) + 1 + len(path) > 255:
        raise InvalidArgument(f"invalid reference format: repository name must not be more than 255 characters: {text}")
    if tag is None and digest is None and default_tag:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest)


def _split_domain(name: str, text: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        domain, path = first, rest
        if not _DOMAIN_RE.match(domain):
            raise InvalidArgument(f"invalid reference format: {text}")
    else:
        domain, path = DEFAULT_DOMAIN, name
    if domain in _LEGACY_DOMAINS:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = f"library/{path}"
    if path != path.lower():
        raise InvalidArgument(f"invalid reference format: repository name (library/{path}) must be lowercase"
                              if "/" not in name else "invalid reference format: repository name must be lowercase")
    if not _PATH.match(path):
        raise InvalidArgument(f"invalid reference format: {text}")
    return domain, path


def looks_like_id(text: str) -> bool:
    """A full image id (``sha256:<hex>`` or 64 hex characters)."""
    return bool(_ID.match(text))
