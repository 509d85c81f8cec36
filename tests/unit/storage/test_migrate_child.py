"""Migrations run in a forked child, so alembic never stays in the server's memory."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=120, check=False)


def test_a_single_threaded_process_migrates_in_a_child_and_never_imports_alembic(tmp_path: Path) -> None:
    done = _run(f"""
        import sys
        import sqlalchemy as sa
        from minicloud.storage.metadata.db import Database
        db = Database("sqlite:///{tmp_path / 'meta.sqlite3'}")
        db.migrate()
        db.migrate()  # idempotent, in a child again
        tables = db.read_sync(lambda c: set(sa.inspect(c).get_table_names()))
        assert {{"accounts", "s3_objects", "lambda_functions", "alembic_version"}} <= tables, tables
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("alembic", "mako")))
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_failed_migration_in_the_child_is_the_callers_error_and_leaves_the_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "meta.sqlite3"
    path.write_bytes(b"not a database" * 512)
    done = _run(f"""
        from minicloud.storage.metadata.db import Database
        try:
            Database("sqlite:///{path}").migrate()
        except RuntimeError as exc:
            print("refused:", exc)
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("refused: migrating the metadata store failed:")
    assert "file is not a database" in done.stdout  # the child's own error, in the caller's
    assert path.read_bytes() == b"not a database" * 512


def test_the_outcome_reaches_the_caller_where_sigchld_is_ignored(tmp_path: Path) -> None:
    done = _run(f"""
        import signal
        import sqlalchemy as sa
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
        from minicloud.storage.metadata.db import Database
        db = Database("sqlite:///{tmp_path / 'meta.sqlite3'}")
        db.migrate()
        print("s3_objects" in db.read_sync(lambda c: sa.inspect(c).get_table_names()))
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"


def test_a_database_in_memory_by_uri_is_migrated_in_this_process(tmp_path: Path) -> None:
    done = _run("""
        import sqlalchemy as sa
        from minicloud.storage.metadata.db import Database
        db = Database("sqlite:///file:mem1?mode=memory&cache=shared&uri=true")
        keep = db.engine.connect()  # (a shared in-memory database lives while a connection does)
        db.migrate()
        print("s3_objects" in db.read_sync(lambda c: sa.inspect(c).get_table_names()))
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"


def test_the_migrating_child_dies_with_its_parent(tmp_path: Path) -> None:
    started = tmp_path / "child.pid"
    parent = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import os, time
        from minicloud.storage.metadata.db import Database
        def slow(self):
            open("{started}", "w").write(str(os.getpid()))
            time.sleep(60)
        Database._migrate_here = slow
        Database("sqlite:///{tmp_path / 'meta.sqlite3'}").migrate()
    """)])
    try:
        deadline = time.monotonic() + 30
        while not started.exists() or not started.read_text():
            assert time.monotonic() < deadline and parent.poll() is None
            time.sleep(0.05)
        child = int(started.read_text())
        parent.kill()
        parent.wait(timeout=10)
        deadline = time.monotonic() + 10
        while _alive(child):
            assert time.monotonic() < deadline, "the migrating child outlived its parent"
            time.sleep(0.05)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(timeout=10)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_with_another_thread_running_it_migrates_in_this_process(tmp_path: Path) -> None:
    done = _run(f"""
        import sys, threading
        stop = threading.Event()
        threading.Thread(target=stop.wait, daemon=True).start()
        from minicloud.storage.metadata.db import Database
        Database("sqlite:///{tmp_path / 'meta.sqlite3'}").migrate()
        stop.set()
        print("alembic" in sys.modules)
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"


def test_a_failed_fork_leaves_no_descriptor_open(tmp_path: Path) -> None:
    done = _run(f"""
        import os
        from minicloud.storage.metadata.db import Database
        db = Database("sqlite:///{tmp_path / 'meta.sqlite3'}")
        def no_fork():
            raise BlockingIOError(11, "Resource temporarily unavailable")
        os.fork = no_fork
        before = len(os.listdir("/proc/self/fd"))
        for _ in range(3):
            try:
                db.migrate()
            except BlockingIOError:
                pass
        print(len(os.listdir("/proc/self/fd")) - before)
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0"


def test_which_sqlite_urls_are_in_memory() -> None:
    import sqlalchemy as sa

    from minicloud.storage.metadata.db import _sqlite_in_memory

    in_memory = ["sqlite://", "sqlite:///:memory:", "sqlite+pysqlite:///file:x?mode=memory&uri=true",
                 "sqlite:///file::memory:?cache=shared&uri=true", "sqlite:///file:y?vfs=memdb&uri=true"]
    on_disk = ["sqlite:///file:y?mode=memory",  # (no uri=true: a file of that name)
               "sqlite:////data/mode=memory/x.db", "sqlite:////tmp/meta.sqlite3"]
    assert [_sqlite_in_memory(sa.make_url(u)) for u in in_memory] == [True] * len(in_memory)
    assert [_sqlite_in_memory(sa.make_url(u)) for u in on_disk] == [False] * len(on_disk)
