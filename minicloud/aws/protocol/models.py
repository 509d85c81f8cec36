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
import gzip
import json
import re
import threading
from dataclasses import dataclass
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
    # A loader of its own, dropped with its cache of documents: the one kept by ``_loader`` would
    # hold a second copy of the model (~1 MiB for S3) for the life of the process. So the document
    # read here is this call's alone, and the patches go into it in place.
    raw = create_loader().load_service_model(name, "service-2")
    patch = _patches().get(name)
    if patch:
        merge_patch(raw, patch)
    return ServiceModel(raw, service_name=name)


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    """What routing needs of a service's model, read without loading the model (the EC2 model alone
    is ~18 MiB in memory: a server that never sees an EC2 request never loads it)."""

    name: str
    signing_name: str
    protocol: str
    api_version: str
    target_prefix: str | None
    service_id: str


@functools.cache
def service_info(name: str) -> ServiceInfo:
    """``name``'s routing metadata: the ``metadata`` object at the head of its ``service-2``
    document, with the patches' (only the head of the file is decompressed and parsed)."""
    metadata = _head_metadata(name)
    patch = _patches().get(name, {}).get("metadata")
    if patch:
        metadata = copy.deepcopy(metadata)
        merge_patch(metadata, patch)
    return ServiceInfo(
        name=name, signing_name=metadata.get("signingName") or metadata["endpointPrefix"],
        protocol=metadata["protocol"], api_version=metadata["apiVersion"],
        target_prefix=metadata.get("targetPrefix"), service_id=metadata.get("serviceId", name))


def _head_metadata(name: str) -> dict[str, Any]:
    path = _document_path(name)
    if path is not None:
        with (gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz"
              else path.open(encoding="utf-8")) as fh:
            head = ""
            while len(head) < _HEAD_LIMIT:
                piece = fh.read(_HEAD_STEP)
                if not piece:
                    break
                head += piece
                found = _metadata_in(head)
                if found is not None:
                    return found
    return dict(load_service_model(name).metadata)  # (not at the head: from the whole model)


def _document_path(name: str) -> Path | None:
    """The file botocore's loader would read for ``name``'s newest ``service-2`` document."""
    loader = _loader()
    version = loader.determine_latest_version(name, "service-2")
    for root in loader.search_paths:
        for suffix in (".json", ".json.gz"):  # (botocore's order)
            path = Path(root, name, version, "service-2" + suffix)
            if path.is_file():
                return path
    return None


_HEAD_STEP, _HEAD_LIMIT = 4096, 64 * 1024
_METADATA_KEY = re.compile(r'"metadata"\s*:\s*')


def _metadata_in(head: str) -> dict[str, Any] | None:
    match = _METADATA_KEY.search(head)
    if match is None:
        return None
    try:
        value, _ = json.JSONDecoder().raw_decode(head, match.end())
    except json.JSONDecodeError:  # not all of it read yet
        return None
    return value if isinstance(value, dict) else None


@functools.lru_cache(maxsize=256)  # asked on every request; a model's metadata never changes
def service_protocols(model: ServiceModel) -> tuple[str, ...]:
    """Every wire protocol a service accepts, the preferred (botocore's choice) first."""
    preferred = model.protocol
    declared = model.metadata.get("protocols") or [preferred]
    return (preferred, *(p for p in declared if p != preferred))
