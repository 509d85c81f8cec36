"""Push a small OCI image through ECR's own API (layer upload + PutImage), for the console's pages."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def _upload_blob(ecr: Any, repository: str, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    upload = ecr.initiate_layer_upload(repositoryName=repository)["uploadId"]
    ecr.upload_layer_part(repositoryName=repository, uploadId=upload, partFirstByte=0,
                          partLastByte=len(data) - 1, layerPartBlob=data)
    ecr.complete_layer_upload(repositoryName=repository, uploadId=upload, layerDigests=[digest])
    return digest


def push_image(ecr: Any, repository: str, tag: str, layers: list[bytes]) -> tuple[str, str]:
    """Push an image of ``layers`` (opaque blobs) tagged ``tag``; returns (manifest digest, manifest)."""
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    config_digest = _upload_blob(ecr, repository, config)
    manifest = {
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest,
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": _upload_blob(ecr, repository, layer), "size": len(layer)} for layer in layers],
    }
    text = json.dumps(manifest)
    result = ecr.put_image(repositoryName=repository, imageManifest=text, imageTag=tag,
                           imageManifestMediaType="application/vnd.oci.image.manifest.v1+json")
    return str(result["image"]["imageId"]["imageDigest"]), text
