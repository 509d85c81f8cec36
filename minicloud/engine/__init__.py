"""The container engine: content store, images, snapshots, containers, and the Docker Engine API.

Layers inside the engine (top uses bottom):

    dockerapi     the Docker Engine API on a unix socket (HTTP/1.1 with connection hijacking)
    engine.py     the facade: wires the stores together, starts and stops them
    containers    OCI bundles, lifecycle states, runc, per-container supervisors, logs, exec
    images        references, the image store, pull, import/load/save
    snapshots     unpacked layers (overlayfs lower dirs) and writable layers, returned as mounts
    content       blobs by digest
"""
