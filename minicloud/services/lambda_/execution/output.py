"""A function's own output: what its processes write to stdout and stderr, read from the engine's
json-file log of the environment's container (one JSON object per line: log, stream, time)."""

from __future__ import annotations

import json
from pathlib import Path


class OutputReader:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self._partial = ""

    def read(self) -> list[str]:
        """The lines written since the last call (without their line ends)."""
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                data = f.read()
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
