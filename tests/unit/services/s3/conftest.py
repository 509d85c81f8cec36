"""Fixtures shared by the S3 unit tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from minicloud.services.s3.data import ObjectData


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ObjectData]:
    """S3's object data over three zones in a temporary directory."""
    objects = ObjectData(tmp_path / "s3", ["a", "b", "c"])
    try:
        yield objects
    finally:
        objects.close()
