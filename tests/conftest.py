from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import MinicloudServer


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MinicloudServer]:
    """One real ``minicloud up`` shared by the integration tests of a session."""
    srv = MinicloudServer(tmp_path_factory.mktemp("minicloud"))
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[MinicloudServer]:
    """A server of the test's own, for tests that restart or kill it."""
    srv = MinicloudServer(tmp_path / "data")
    yield srv
    srv.stop()
