from __future__ import annotations

import pytest

from minicloud.engine.containers.model import Container
from minicloud.engine.containers.state import ALLOWED, Status, check
from minicloud.engine.errors import Conflict


def make() -> Container:
    return Container(id="c" * 64, name="box", created="", image_id="", image_name="busybox", config={},
                     host_config={})


def test_lifecycle() -> None:
    c = make()
    for target in (Status.RUNNING, Status.PAUSED, Status.RUNNING, Status.EXITED, Status.RUNNING,
                   Status.EXITED, Status.REMOVING):
        c.transition(target)
    assert c.state.status is Status.REMOVING


@pytest.mark.parametrize(("current", "target", "message"), [
    (Status.RUNNING, Status.RUNNING, "already running"),
    (Status.PAUSED, Status.PAUSED, "already paused"),
    (Status.CREATED, Status.PAUSED, "is not running"),
    (Status.RUNNING, Status.REMOVING, "You cannot remove a running container"),
    (Status.PAUSED, Status.RUNNING.__class__("running"), None),
    (Status.REMOVING, Status.REMOVING, "already in progress"),
    (Status.DEAD, Status.RUNNING, "cannot become running"),
])
def test_refused_transitions(current: Status, target: Status, message: str | None) -> None:
    if target in ALLOWED[current]:
        check(current, target, "abc")
        return
    with pytest.raises(Conflict, match=message or ""):
        check(current, target, "abc")


def test_every_state_has_rules() -> None:
    assert set(ALLOWED) == set(Status)
    assert all(Status.RUNNING not in ALLOWED[s] for s in (Status.DEAD, Status.REMOVING))


def test_record_round_trip() -> None:
    c = make()
    c.transition(Status.RUNNING)
    c.state.pid = 42
    again = Container.from_json(c.to_json())
    assert again == c and again.state.status is Status.RUNNING
