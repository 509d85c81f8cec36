"""The error a failed build step reports in the stream (``errorDetail``)."""

from __future__ import annotations

from minicloud.engine.errors import EngineError


class BuildError(EngineError):
    """A step failed: reported in the stream as ``errorDetail`` (``code``: a RUN's exit status)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code
