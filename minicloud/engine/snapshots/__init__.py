"""Snapshots: unpacked layers as overlayfs lower directories, and containers' writable layers.

The snapshotter returns mounts instead of mounting (testable without root); ``mounts.py`` performs
them when a container starts.
"""
