"""The container engine: content store, images, snapshots, containers, and the Docker Engine API.

Layers inside the engine (top uses bottom):

    dockerapi     the Docker Engine API on a unix socket (HTTP/1.1 with connection hijacking)
    engine.py     the facade: wires the stores together, starts and stops them
    containers    OCI bundles, lifecycle states, runc, per-container supervisors, logs, exec;
                  attachments.py ties a container's lifecycle to its networks and volumes
    network       the engine's namespace with a bridge per network, IPAM, veth pairs, its own
                  nftables table, a name server per network, published ports on loopback
    volumes       named and anonymous volumes, binds, tmpfs
    images        references, the image store, pull, import/load/save
    snapshots     unpacked layers (overlayfs lower dirs) and writable layers, returned as mounts
    content       blobs by digest
"""
