"""A throw-away PostgreSQL server from Debian's package, for the metadata store's test suite."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.server import free_port


def postgres_bin() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    return Path(candidates[-1]).parent if candidates else None


class PostgresServer:
    """initdb + postgres in a temporary folder, run as the ``postgres`` user when we are root."""

    def __init__(self) -> None:
        bindir = postgres_bin()
        if bindir is None:
            raise RuntimeError("PostgreSQL is not installed (Debian package postgresql); run make install")
        self.bindir = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="minicloud-pg-"))
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.user = "postgres" if os.getuid() == 0 else pwd.getpwuid(os.getuid()).pw_name

    def _run_as(self, args: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *args] if os.getuid() == 0 else args

    def start(self) -> PostgresServer:
        data = self.dir / "data"
        if os.getuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        subprocess.run(self._run_as([str(self.bindir / "initdb"), "-D", str(data), "-A", "trust",
                                     "-U", self.user, "--no-sync"]),
                       check=True, capture_output=True)
        log = open(self.dir / "log", "wb")  # noqa: SIM115 - owned by the process
        self.process = subprocess.Popen(
            self._run_as([str(self.bindir / "postgres"), "-D", str(data), "-p", str(self.port),
                          "-k", str(self.dir), "-h", "127.0.0.1", "-c", "fsync=off"]),
            stdout=log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            probe = subprocess.run([str(self.bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                                   capture_output=True)
            if probe.returncode == 0:
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("PostgreSQL did not start:\n" + (self.dir / "log").read_text())

    def create_database(self, name: str) -> str:
        subprocess.run(self._run_as([str(self.bindir.parent / "bin" / "createdb"), "-h", "127.0.0.1",
                                     "-p", str(self.port), "-U", self.user, name]),
                       check=True, capture_output=True)
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # smart shutdown by PID
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        shutil.rmtree(self.dir, ignore_errors=True)
