"""Request ids: unique, UUID-shaped, and a forked child never repeats its parent's."""

from __future__ import annotations

import os
import uuid

from minicloud.aws.request_ids import new_request_id


def test_ids_are_unique_version_4_uuids() -> None:
    ids = [new_request_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(uuid.UUID(i).version == 4 and str(uuid.UUID(i)) == i for i in ids)


def test_a_forked_child_draws_a_new_prefix() -> None:
    parent = new_request_id()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 100).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert child[:23] != parent[:23]
