"""An execution environment's network slot is reused only once its container is gone (regression
test of the security review: a failed removal was swallowed and the slot, with the old container
possibly still in it, handed to the next function)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from minicloud.services.lambda_.execution.environment import Environment, State
from minicloud.services.lambda_.execution.pool import ExecutionService, ExecutionSettings
from minicloud.services.lambda_.execution.slots import Slot, SlotPool
from minicloud.services.lambda_.execution.spec import EnvironmentSpec

SPEC = EnvironmentSpec(pool_key="k", account_id="111122223333", region="us-east-1", function_name="f",
                       function_arn="arn:aws:lambda:us-east-1:111122223333:function:f", version="$LATEST",
                       runtime="python3.11", handler="app.handler", image="i", code_dir=None, memory_mb=128,
                       timeout=3, role_arn="arn:aws:iam::111122223333:role/r")


class Workloads:
    def __init__(self, fail: bool) -> None:
        self.fail = fail
        self.removed: list[str] = []

    async def remove(self, container_id: str, namespace: str) -> None:
        if self.fail:
            raise RuntimeError("device or resource busy")
        self.removed.append(container_id)


def _destroy_one(tmp_path: Path, fail: bool) -> tuple[SlotPool, Slot]:
    async def scenario() -> tuple[SlotPool, Slot]:
        slots = SlotPool(tmp_path, aws_port=1, spare=0)
        slot = Slot(0, tmp_path / "env0")
        slots._all[0] = slot
        workloads = Workloads(fail)
        service = ExecutionService(workloads, slots, ExecutionSettings(spare_namespaces=0), 1,
                                   credentials=None, sink=lambda *args: None)  # type: ignore[arg-type]
        env = Environment(SPEC, slot, workloads, {}, 1)
        env.container_id, env.state = "c1", State.DEAD
        service._all.add(env)
        await service._destroy(env)
        await asyncio.sleep(0.05)  # the discarded slot's close, in the background
        return slots, slot
    return asyncio.run(scenario())


def test_the_slot_is_reused_after_its_container_is_removed(tmp_path: Path) -> None:
    slots, slot = _destroy_one(tmp_path, fail=False)
    assert slot in slots._free and slots._all == {0: slot}


def test_the_slot_is_discarded_when_its_container_could_not_be_removed(tmp_path: Path) -> None:
    slots, slot = _destroy_one(tmp_path, fail=True)
    assert slot not in slots._free and 0 not in slots._all
