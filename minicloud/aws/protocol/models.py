"""botocore service models, loaded once and corrected by ``model_patches.json``.

The patch file is the single place where minicloud corrects or extends botocore's models. Its
top level maps a botocore service name to a patch that is deep-merged into the service's
``service-2`` document (``metadata``, ``operations``, ``shapes``): dictionaries merge key by key, a
``null`` value deletes the key, anything else replaces. Keys starting with ``_`` are comments or
settings for this package (``_settings``), never merged into a model.
"""

from __future__ import annotations

import copy
import functools
import json
import threading
from pathlib import Path
from typing import Any

from botocore.loaders import Loader, create_loader
from botocore.model import ServiceModel

PATCHES_FILE = Path(__file__).with_name("model_patches.json")

_lock = threading.Lock()


@functools.cache
def _loader() -> Loader:
    return create_loader()


@functools.cache
def _patches() -> dict[str, Any]:
    with PATCHES_FILE.open(encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def settings() -> dict[str, Any]:
    """This package's own settings from the patch file (e.g. which services validate enums)."""
    value = _patches().get("_settings", {})
    return value if isinstance(value, dict) else {}


def merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """Deep-merge ``patch`` into ``target`` in place (JSON merge patch semantics, RFC 7386)."""
    for key, value in patch.items():
        if key.startswith("_"):
            continue
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge_patch(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def load_service_model(name: str) -> ServiceModel:
    """The botocore ``ServiceModel`` of service ``name`` (botocore's name: ``s3``, ``cloudwatch``...),
    with minicloud's patches applied. Loaded once per process."""
    with _lock:
        return _load(name)


@functools.cache
def _load(name: str) -> ServiceModel:
    raw = _loader().load_service_model(name, "service-2")
    patch = _patches().get(name)
    if patch:
        raw = copy.deepcopy(raw)  # the loader caches its documents: never patch them in place
        merge_patch(raw, patch)
    return ServiceModel(raw, service_name=name)


@functools.lru_cache(maxsize=256)  # asked on every request; a model's metadata never changes
def service_protocols(model: ServiceModel) -> tuple[str, ...]:
    """Every wire protocol a service accepts, the preferred (botocore's choice) first."""
    preferred = model.protocol
    declared = model.metadata.get("protocols") or [preferred]
    return (preferred, *(p for p in declared if p != preferred))
