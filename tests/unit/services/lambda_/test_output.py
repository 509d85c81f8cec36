"""A function's output read from the engine's json-file log, line by line, as it grows."""

from __future__ import annotations

import json
from pathlib import Path

from minicloud.services.lambda_.execution.output import OutputReader


def append(path: Path, *texts: str) -> None:
    with path.open("a") as f:
        for text in texts:
            f.write(json.dumps({"log": text, "stream": "stdout", "time": "t"}) + "\n")


def test_lines_since_the_last_read(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    reader = OutputReader(log)
    assert reader.read() == []  # no file yet
    append(log, "one\n", "two\n")
    assert reader.read() == ["one", "two"]
    assert reader.read() == []
    append(log, "part", "ial\n")  # a long line the engine split
    assert reader.read() == ["partial"]
    with log.open("a") as f:
        f.write('{"log": "half writ')  # an entry still being written
    assert reader.read() == []
