from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from minicloud.storage.metadata.db import Database
from tests.support.postgres import PostgresServer
from tests.support.server import MinicloudServer, release_mounts_under


@pytest.fixture(scope="session", autouse=True)
def _no_mounts_left_behind(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """After the last test, release the mounts of servers the tests killed and never restarted."""
    yield
    release_mounts_under(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MinicloudServer]:
    """One real ``minicloud up`` shared by the integration tests of a session."""
    srv = MinicloudServer(tmp_path_factory.mktemp("minicloud"))
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def _shared_server_alive(request: pytest.FixtureRequest) -> None:
    """A test of the shared server first checks it still runs: if it died, the first test after
    says so with the end of its log (the session's temporary directory, and the log, may be gone
    by the time anyone looks)."""
    if "server" in request.fixturenames:
        request.getfixturevalue("server").check_alive()


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[MinicloudServer]:
    """A server of the test's own, for tests that restart or kill it."""
    srv = MinicloudServer(tmp_path / "data")
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server from Debian's package, shared by the session."""
    pg = PostgresServer().start()
    yield pg
    pg.stop()


_db_counter = iter(range(1_000_000))


@pytest.fixture(params=["sqlite", "postgresql"])
def metadata_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """The metadata store on every supported backend: one suite, every implementation."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'metadata.sqlite3'}"
    else:
        pg: PostgresServer = request.getfixturevalue("postgres")
        url = pg.create_database(f"test{next(_db_counter)}")
    db = Database(url)
    db.migrate()
    yield db
    db.close()


# In CI every tool the tests use is installed by `make install`: a test that skips there would
# hide a missing install step, so it fails instead. Only the opt-in suites may skip.
_OPT_IN_SKIPS = ("conformance suite", "MINICLOUD_PROTOCOL_ALL_SERVICES", "MINICLOUD_IMAGES_ALL")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if not os.environ.get("CI") or not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if not any(marker in reason for marker in _OPT_IN_SKIPS):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where make install provides every tool: {reason}"
