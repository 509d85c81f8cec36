"""A function's own output: what its processes write to stdout and stderr, read from the engine's
json-file log of the environment's container (one JSON object per line: log, stream, time)."""

from __future__ import annotations

import json
import os
from pathlib import Path


class OutputReader:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self._partial = ""
        self._fd: int | None = None

    def read(self) -> list[str]:
        """The lines written since the last call (without their line ends)."""
        try:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            chunks: list[bytes] = []
            position = self.offset
            while chunk := os.pread(self._fd, 1 << 20, position):
                chunks.append(chunk)
                position += len(chunk)
            data = b"".join(chunks)
        except OSError:
            return []
        end = data.rfind(b"\n") + 1
        self.offset += end
        lines: list[str] = []
        for raw in data[:end].splitlines():
            try:
                text = json.loads(raw).get("log", "")
            except ValueError:
                continue
            text = self._partial + text
            self._partial = ""
            if not text.endswith("\n"):
                self._partial = text  # the shim splits long lines; the rest follows
                continue
            lines.append(text[:-1])
        return lines

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
