"""A container's lifecycle as explicit states with the transitions allowed between them (after
containerd's ``init_state.go``). Every change goes through ``State.transition``; anything else is
a conflict with Docker's wording.

    created --start--> running --exit--> exited --start--> running
       |                 |  ^                |
       |              pause unpause          +--remove--> removing
       |                 v  |
       +--remove-->    paused --exit (killed)--> exited
    any --fail--> dead --remove--> removing
"""

from __future__ import annotations

from enum import StrEnum

from minicloud.engine.errors import Conflict


class Status(StrEnum):
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    RESTARTING = "restarting"
    REMOVING = "removing"
    EXITED = "exited"
    DEAD = "dead"


ALLOWED: dict[Status, frozenset[Status]] = {
    Status.CREATED: frozenset({Status.RUNNING, Status.REMOVING, Status.DEAD, Status.EXITED}),
    Status.RUNNING: frozenset({Status.PAUSED, Status.EXITED, Status.DEAD}),
    Status.PAUSED: frozenset({Status.RUNNING, Status.EXITED, Status.DEAD}),
    Status.RESTARTING: frozenset({Status.RUNNING, Status.EXITED, Status.DEAD, Status.REMOVING}),
    Status.EXITED: frozenset({Status.RUNNING, Status.RESTARTING, Status.REMOVING, Status.DEAD}),
    Status.DEAD: frozenset({Status.REMOVING}),
    Status.REMOVING: frozenset({Status.DEAD}),
}


def check(current: Status, target: Status, container: str) -> None:
    """Raise ``Conflict`` unless ``current -> target`` is allowed."""
    if target in ALLOWED[current]:
        return
    raise Conflict(_message(current, target, container))


def _message(current: Status, target: Status, container: str) -> str:
    if target is Status.PAUSED:
        if current is Status.PAUSED:
            return f"Container {container} is already paused"
        return f"Container {container} is not running"
    if target is Status.RUNNING and current is Status.RUNNING:
        return f"Container {container} is already running"
    if target is Status.RUNNING and current is Status.PAUSED:
        return f"Container {container} is paused, unpause the container before starting it"
    if target is Status.REMOVING:
        if current is Status.REMOVING:
            return f"removal of container {container} is already in progress"
        return (f"You cannot remove a {current.value} container {container}. "
                "Stop the container before attempting removal or force remove")
    return f"Container {container} is {current.value}: cannot become {target.value}"
