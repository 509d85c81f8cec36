"""Metadata writes that another process (or a thread with no event loop) can run for the caller.

A ``PortableWrite`` is a module-level function and its picklable arguments: ``fn(conn, *args)``.
S3 hands its object rows to the small-blob writer this way (``storage.blobs.writerproc``): the
writer makes the data durable and then commits the row in the same round, on its own thread,
instead of acknowledging the data to the server's event loop, which would then run the row's
statements and wait for a COMMIT of its own (see ``writerproc``'s module notes for the figures).
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import sqlalchemy as sa

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PortableWrite(Generic[T]):
    """``fn(conn, *args)``, ``fn`` defined at a module's top level and ``args`` picklable."""

    fn: Callable[..., T]
    args: tuple[Any, ...]

    def __call__(self, conn: sa.Connection) -> T:
        return self.fn(conn, *self.args)

    def dumps(self) -> bytes | None:
        """The write as bytes for another process: the pickled pair ``(fn, args)`` (a plain tuple:
        a third cheaper to pickle than this slotted class); None when it cannot travel."""
        try:
            return pickle.dumps((self.fn, self.args), pickle.HIGHEST_PROTOCOL)
        except Exception:  # an argument that does not pickle: the caller runs it itself
            return None

