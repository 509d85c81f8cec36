"""Containers: OCI bundles, lifecycle states, runc and per-container supervisors, logs, exec."""
