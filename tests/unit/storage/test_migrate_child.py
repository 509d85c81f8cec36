"""Migrations run in a forked child, so alembic never stays in the server's memory."""

from __future__ import annotations

import subprocess
import sys
import textwrap
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
    assert done.stdout.startswith("refused: migrating the metadata store failed")
    assert "file is not a database" in done.stderr  # the child's own error, logged
    assert path.read_bytes() == b"not a database" * 512


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
