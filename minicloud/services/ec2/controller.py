"""InstanceController: makes instances' actual state match the desired one, again and again.

    pending        ensure the VPC's router and the instance's port (its network namespace), the
                   VPC's security rules and public address, write the guest's seed, create (or
                   re-start: the root filesystem is kept) the container -> running
    running        the container must run: after a minicloud restart it is started again; when it
                   ended by itself (poweroff inside) the instance-initiated shutdown behaviour
                   applies (stop or terminate); ``reboot`` inside and RebootInstances restart it
    stopping       stop the container (its writable layer stays), remove the port, release an
                   automatic public address -> stopped
    shutting-down  remove the container, port, address and instance directory -> terminated
    terminated     deleted after ``terminated_retention`` seconds

Every pass hands each VPC's complete rule set to the data plane, then makes the AMIs CreateImage
asked for (``imagemaker``). The provider wakes the
controller after every change (``wake``); container exits wake it too.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from minicloud.services.ec2 import store
from minicloud.services.ec2.apirelay import RELAY_ADDRESS, ApiRelay
from minicloud.services.ec2.catalog import INSTANCE_TYPES
from minicloud.services.ec2.imagemaker import make_pending_images
from minicloud.services.ec2.launch import public_dns
from minicloud.services.ec2.routing import routes_to_internet
from minicloud.services.ec2.settings import Ec2Settings
from minicloud.services.ec2.store import Resource

if TYPE_CHECKING:
    from minicloud.runtime import Runtime
    from minicloud.vpcnet import VpcDataPlane

log = logging.getLogger("minicloud.ec2")

NAMESPACE = "ec2"
IDLE_WAIT = 5.0  # a full pass at least this often, even when nothing woke the controller
PARALLEL = 8  # instances converged at once
MAX_LAUNCH_FAILURES = 3
FOREIGN_ADDRESS_RETRIES = 8


class InstanceController:
    name = "ec2-instances"
    interval = 0.1

    def __init__(self, runtime: Runtime, settings: Ec2Settings, metadata: Any = None) -> None:
        self.runtime = runtime
        self.settings = settings
        self.metadata_source = metadata
        self.state_dir = runtime.config.data_dir / "ec2"
        self.plane: VpcDataPlane | None = None
        self.metadata_server: Any = None
        self.api_relay = ApiRelay(runtime.config.host, runtime.config.port)
        self._dirty = asyncio.Event()
        self._dirty.set()
        self._started: set[str] = set()  # instances whose container this process started
        self._watchers: dict[str, asyncio.Task[None]] = {}
        self._vpcs: dict[str, str] = {}  # VPCs the data plane has: id -> CIDR
        self._failures: dict[str, int] = {}

    def wake(self) -> None:
        self._dirty.set()

    # -- the loop ------------------------------------------------------------------------------------
    async def reconcile(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._dirty.wait(), IDLE_WAIT)
        self._dirty.clear()
        engine = self.runtime.engine
        if engine is None:
            return
        instances = await self.runtime.db.read(lambda conn: store.select(conn, None, None, "instance"))
        if self.plane is None and not (self.state_dir / "vpcnet").exists() and \
                all(i.state == "terminated" for i in instances):
            return  # nothing to network yet: no namespace or table on the host until an instance needs one
        await self._start_plane()
        await self._expire(instances)
        semaphore = asyncio.Semaphore(PARALLEL)

        async def converge(instance: Resource) -> None:
            async with semaphore:
                try:
                    await self._converge(instance)
                    self._failures.pop(instance.id, None)
                except Exception as exc:
                    await self._failed(instance, exc)
        live = [i for i in instances if i.state != "terminated"]
        # networking first, so that a new instance's rules exist before it starts
        await asyncio.gather(*(converge(i) for i in live if i.state in ("stopping", "shutting-down")))
        await asyncio.gather(*(self._guard_port(i, semaphore) for i in live if i.state in ("pending", "running")))
        await self._apply_security()
        await asyncio.gather(*(converge(i) for i in live if i.state in ("pending", "running")))
        await self._drop_deleted_vpcs()
        await make_pending_images(self.runtime)

    async def _failed(self, instance: Resource, exc: Exception) -> None:
        count = self._failures[instance.id] = self._failures.get(instance.id, 0) + 1
        log.warning("instance %s: %s failed (%d): %s", instance.id, instance.state, count, exc, exc_info=True)
        self._dirty.set()
        if instance.state == "pending" and count >= MAX_LAUNCH_FAILURES:
            reason = {"Code": "Server.InternalError",
                      "Message": f"Server.InternalError: Internal error on launch: {exc}"}

            def fail(doc: Resource) -> None:
                doc.state, doc.doc["_desired"], doc.doc["StateReason"] = "shutting-down", "terminated", reason
            await self._update(instance.id, ("pending",), fail)
        await asyncio.sleep(min(2.0, 0.2 * count))

    # -- the data plane ---------------------------------------------------------------------------------
    async def _start_plane(self) -> None:
        if self.plane is not None:
            return
        from minicloud.vpcnet import VpcDataPlane

        plane = VpcDataPlane(self.state_dir / "vpcnet", public_pool=self.settings.public_ip_pool)
        await plane.start()
        await self.runtime.db.write(store.forget_foreign_public_ips)  # the host may have changed
        self.plane = plane
        if self.metadata_source is not None:
            from minicloud.services.ec2.imds import MetadataServer

            self.metadata_server = MetadataServer(self.metadata_source)

    async def _ensure_vpc(self, vpc_id: str) -> None:
        assert self.plane is not None
        if vpc_id in self._vpcs:
            return
        vpc = await self.runtime.db.read(lambda conn: store.get(conn, vpc_id, kind="vpc"))
        if vpc is None:
            raise RuntimeError(f"VPC {vpc_id} no longer exists")
        await self.plane.ensure_vpc(vpc_id, vpc.doc["CidrBlock"])
        self._vpcs[vpc_id] = vpc.doc["CidrBlock"]
        if self.metadata_server is not None:
            await self.metadata_server.serve(vpc_id, await self.plane.metadata_socket(vpc_id))
        port = self.runtime.config.port
        await self.api_relay.serve(vpc_id, await self.plane.listen_socket(vpc_id, RELAY_ADDRESS, port))

    async def _drop_deleted_vpcs(self) -> None:
        assert self.plane is not None
        for vpc_id in list(self._vpcs):
            exists = await self.runtime.db.read(_getter(vpc_id, "vpc"))
            if exists is None:
                if self.metadata_server is not None:
                    await self.metadata_server.stop_serving(vpc_id)
                await self.api_relay.stop_serving(vpc_id)
                await self.plane.remove_vpc(vpc_id)
                del self._vpcs[vpc_id]

    async def _apply_security(self) -> None:
        from minicloud.vpcnet import Rule, SecurityGroup

        assert self.plane is not None
        for vpc_id in list(self._vpcs):
            groups = await self.runtime.db.read(_groups_of(vpc_id))

            def rules(group: Resource, egress: bool) -> tuple[Rule, ...]:
                return tuple(Rule(protocol="all" if r["proto"] == "-1" else r["proto"], from_port=r["from"],
                                  to_port=r["to"], cidrs=(r["cidr"],) if r["cidr"] else (),
                                  peer_group_ids=(r["group"],) if r["group"] else ())
                             for r in group.doc["_rules"] if r["egress"] == egress)
            await self.plane.apply_security(vpc_id, [SecurityGroup(g.id, vpc_id, rules(g, False), rules(g, True))
                                                     for g in groups])

    async def _guard_port(self, instance: Resource, semaphore: asyncio.Semaphore) -> None:
        async with semaphore:
            try:
                await self._ensure_port(instance)
            except Exception as exc:
                await self._failed(instance, exc)

    async def _ensure_port(self, instance: Resource) -> str:
        """The instance's namespace (made or updated). An automatic public address that another
        program on the host maps already (another minicloud) is given up for the next free one."""
        from minicloud.vpcnet import Conflict

        for _ in range(FOREIGN_ADDRESS_RETRIES):
            try:
                return await self._plug(instance)
            except Conflict as exc:
                address = instance.doc.get("PublicIpAddress")
                if not address or instance.doc.get("_eip") or address not in str(exc):
                    raise
                await self._give_up_address(instance, address)
        return await self._plug(instance)

    async def _give_up_address(self, instance: Resource, address: str) -> None:
        def give_up(conn: sa.Connection) -> None:
            store.mark_public_ip_foreign(conn, address)
            current = store.get(conn, instance.id)
            if current is not None and current.doc.get("PublicIpAddress") == address:
                current.doc.pop("PublicIpAddress", None)
                current.doc["PublicDnsName"] = ""
                store.save(conn, current)
        await self.runtime.db.write(give_up)
        instance.doc.pop("PublicIpAddress", None)

    async def _plug(self, instance: Resource) -> str:
        from minicloud.vpcnet import Port

        assert self.plane is not None
        vpc_id = instance.vpc_id or ""
        await self._ensure_vpc(vpc_id)
        public_ip = await self._public_ip(instance)
        subnet = await self.runtime.db.read(lambda conn: store.get(conn, instance.doc["SubnetId"], kind="subnet"))
        if subnet is None:
            raise RuntimeError(f"subnet {instance.doc['SubnetId']} no longer exists")
        port = Port(instance_id=instance.id, vpc_id=vpc_id, subnet_id=subnet.id, subnet_cidr=subnet.doc["CidrBlock"],
                    private_ip=instance.doc["PrivateIpAddress"], mac=instance.doc["_mac"],
                    group_ids=tuple(g["GroupId"] for g in instance.doc["SecurityGroups"]), public_ip=public_ip)
        return await self.plane.ensure_port(port)

    async def _public_ip(self, instance: Resource) -> str | None:
        """The instance's public address: its Elastic IP, or an automatic one (taken now) when its
        subnet maps public IPs at launch and routes to an attached internet gateway."""
        if instance.doc.get("PublicIpAddress"):
            return str(instance.doc["PublicIpAddress"])
        if not await self.runtime.db.read(lambda conn: _wants_public_ip(conn, instance)):
            return None
        pool = self.settings.public_ip_pool

        def take(conn: sa.Connection) -> str | None:
            current = store.get(conn, instance.id)
            if current is None or current.state not in ("pending", "running"):
                return None
            if current.doc.get("PublicIpAddress"):
                return str(current.doc["PublicIpAddress"])
            if not _wants_public_ip(conn, current):
                return None
            address = store.take_public_ip(conn, pool, current.account_id, current.region, current.id)
            if address is None:
                return None
            current.doc["PublicIpAddress"] = address
            current.doc["PublicDnsName"] = public_dns(address, current.region)
            store.save(conn, current)
            return address
        address = await self.runtime.db.write(take)
        if address:
            instance.doc["PublicIpAddress"] = address
        return address

    # -- one instance ---------------------------------------------------------------------------------
    async def _converge(self, instance: Resource) -> None:
        if instance.state == "stopping":
            await self._stop(instance)
        elif instance.state == "shutting-down":
            await self._terminate(instance)
        elif instance.state == "pending":
            await self._launch(instance)
        elif instance.state == "running":
            await self._keep_running(instance)

    def _instance_dir(self, instance_id: str) -> Path:
        return self.state_dir / "instances" / instance_id

    async def _netns(self, instance: Resource) -> str:
        """The instance's namespace: made by this pass's port phase, else now."""
        assert self.plane is not None
        path = self.plane.port_netns(instance.id)
        return str(path) if path is not None else await self._ensure_port(instance)

    async def _launch(self, instance: Resource) -> None:
        await self._run_container(instance, await self._netns(instance))

        def running(doc: Resource) -> None:
            doc.state = "running"
            doc.doc.pop("StateReason", None)
            doc.doc["_reboots_done"] = doc.doc.get("_reboots", 0)
        if not await self._update(instance.id, ("pending",), running):
            self._dirty.set()  # changed meanwhile (stopped or terminated): the next pass handles it

    async def _run_container(self, instance: Resource, netns: str) -> None:
        from minicloud.engine.workloads import WorkloadSpec
        from minicloud.services.ec2 import guest

        workloads = self.runtime.engine.workloads
        directory = self._instance_dir(instance.id)
        user_data = base64.b64decode(instance.doc["_user_data"]) if instance.doc.get("_user_data") else None
        seed = guest.Seed(instance_id=instance.id, hostname=instance.doc["PrivateDnsName"].split(".")[0],
                          user_data=user_data, public_keys=tuple(k for _, k in instance.doc["_public_keys"]))
        await asyncio.to_thread(_write_seed, directory, seed)
        itype = INSTANCE_TYPES[instance.doc["InstanceType"]]
        container = workloads.find(NAMESPACE, instance.id)
        if container is not None and container.host_config.get("NetworkMode") != f"ns:{netns}":
            await workloads.remove(container.id, NAMESPACE)  # made for a namespace that is gone
            container = None
        if container is None:
            spec = WorkloadSpec(
                namespace=NAMESPACE, name=instance.id, image=instance.doc["_image"], command=guest.boot_command(),
                entrypoint=[], hostname=seed.hostname, memory_bytes=itype.memory_bytes, nano_cpus=itype.nano_cpus,
                pids_limit=4096, netns=netns, binds=guest.guest_binds(directory),
                labels={"minicloud.ec2.instance-id": instance.id, "minicloud.ec2.account": instance.account_id})
            container = await workloads.create(spec)
        elif _apply_limits(container, itype.memory_bytes, itype.nano_cpus):
            await workloads.containers.save(container)
        if container.state.status == "running":
            await workloads.stop(container.id, NAMESPACE, timeout=5)
        await workloads.start(container.id, NAMESPACE)
        self._started.add(instance.id)
        self._watch(instance.id, container.id)

    def _watch(self, instance_id: str, container_id: str) -> None:
        old = self._watchers.pop(instance_id, None)
        if old is not None:
            old.cancel()
        workloads = self.runtime.engine.workloads

        async def watch() -> None:
            with contextlib.suppress(Exception):
                await workloads.wait(container_id, NAMESPACE)
            self._dirty.set()
        self._watchers[instance_id] = asyncio.create_task(watch(), name=f"ec2-watch-{instance_id}")

    async def _keep_running(self, instance: Resource) -> None:
        from minicloud.services.ec2 import guest

        workloads = self.runtime.engine.workloads
        container = workloads.find(NAMESPACE, instance.id)
        alive = container is not None and container.state.status == "running"
        if instance.id not in self._started or container is None:
            # minicloud restarted (the namespace was swept, the container stopped): bring it back
            await self._run_container(instance, await self._netns(instance))
            return
        if not alive:
            assert container is not None
            if container.state.exit_code == guest.REBOOT_EXIT_CODE:
                await workloads.start(container.id, NAMESPACE)
                self._watch(instance.id, container.id)
                return
            await self._shut_down_from_inside(instance)
            return
        if int(instance.doc.get("_reboots") or 0) > int(instance.doc.get("_reboots_done") or 0):
            await workloads.stop(container.id, NAMESPACE, timeout=5)
            await workloads.start(container.id, NAMESPACE)
            self._watch(instance.id, container.id)

            def rebooted(doc: Resource) -> None:
                doc.doc["_reboots_done"] = doc.doc.get("_reboots", 0)
            await self._update(instance.id, ("running",), rebooted)

    async def _shut_down_from_inside(self, instance: Resource) -> None:
        terminate = instance.doc.get("_shutdown_behavior") == "terminate"
        reason = {"Code": "Client.InstanceInitiatedShutdown",
                  "Message": "Client.InstanceInitiatedShutdown: Instance initiated shutdown"}

        def shut(doc: Resource) -> None:
            doc.state = "shutting-down" if terminate else "stopping"
            doc.doc["_desired"] = "terminated" if terminate else "stopped"
            doc.doc["StateReason"] = reason
        await self._update(instance.id, ("running",), shut)
        self._dirty.set()

    async def _stop(self, instance: Resource) -> None:
        workloads = self.runtime.engine.workloads
        container = workloads.find(NAMESPACE, instance.id)
        if container is not None and container.state.status == "running":
            if instance.doc.get("_force"):
                await workloads.kill(container.id, NAMESPACE)
            else:
                await workloads.stop(container.id, NAMESPACE, timeout=10)
        await self._unplug(instance)

        def stopped(doc: Resource) -> None:
            doc.state = "stopped"
            doc.doc.pop("_force", None)
        await self._update(instance.id, ("stopping",), stopped)

    async def _terminate(self, instance: Resource) -> None:
        workloads = self.runtime.engine.workloads
        container = workloads.find(NAMESPACE, instance.id)
        if container is not None:
            await workloads.remove(container.id, NAMESPACE)
        await self._unplug(instance, keep_eip=False)
        await asyncio.to_thread(shutil.rmtree, self._instance_dir(instance.id), True)
        self._started.discard(instance.id)

        def terminated(doc: Resource) -> None:
            doc.state = "terminated"
            doc.doc["_terminated_at"] = datetime.now(UTC).isoformat()
            for interface in doc.doc.get("NetworkInterfaces") or []:
                interface["Status"] = "available"
        await self._update(instance.id, ("shutting-down",), terminated)

    async def _unplug(self, instance: Resource, keep_eip: bool = True) -> None:
        """Remove the port; release an automatic public address (an Elastic IP stays the instance's
        while it is stopped, and is disassociated when it is terminated)."""
        assert self.plane is not None
        watcher = self._watchers.pop(instance.id, None)
        if watcher is not None:
            watcher.cancel()
        await self.plane.remove_port(instance.id)

        def release(conn: sa.Connection) -> None:
            current = store.get(conn, instance.id)
            if current is None:
                return
            address = current.doc.get("PublicIpAddress")
            allocation = current.doc.get("_eip")
            if allocation and not keep_eip:
                eip = store.get(conn, allocation)
                if eip is not None:
                    for key in ("InstanceId", "AssociationId", "NetworkInterfaceId", "PrivateIpAddress",
                                "NetworkInterfaceOwnerId"):
                        eip.doc.pop(key, None)
                    store.save(conn, eip)
                current.doc.pop("_eip", None)
            elif address and not allocation:
                store.release_public_ip(conn, address)
            if address and (not allocation or not keep_eip):
                current.doc.pop("PublicIpAddress", None)
                current.doc["PublicDnsName"] = ""
            store.save(conn, current)
        await self.runtime.db.write(release)

    async def _expire(self, instances: list[Resource]) -> None:
        horizon = datetime.now(UTC) - timedelta(seconds=self.settings.terminated_retention)
        for instance in instances:
            ended = instance.doc.get("_terminated_at")
            if instance.state == "terminated" and ended and datetime.fromisoformat(ended) < horizon:
                await self.runtime.db.write(_deleter(instance.id))

    async def _update(self, instance_id: str, expected: tuple[str, ...], change: Callable[[Resource], None]) -> bool:
        """Apply ``change`` to the instance's current row, only while it is in one of ``expected``."""
        def update(conn: sa.Connection) -> bool:
            current = store.get(conn, instance_id)
            if current is None or current.state not in expected:
                return False
            change(current)
            store.save(conn, current)
            return True
        return await self.runtime.db.write(update)

    # -- shutdown ---------------------------------------------------------------------------------------
    async def close(self) -> None:
        for task in self._watchers.values():
            task.cancel()
        self._watchers.clear()
        if self.metadata_server is not None:
            await self.metadata_server.close()
        await self.api_relay.close()
        if self.plane is not None:
            await self.plane.stop()
            self.plane = None


def _wants_public_ip(conn: sa.Connection, instance: Resource) -> bool:
    """Whether the instance gets an automatic public address: its subnet maps one at launch (or it
    asked, AssociatePublicIpAddress) and routes to an internet gateway attached to its VPC."""
    subnet = store.get(conn, instance.doc["SubnetId"], kind="subnet")
    if subnet is None:
        return False
    wanted = instance.doc.get("_associate_public_ip")
    if not (subnet.doc.get("MapPublicIpOnLaunch") if wanted is None else wanted):
        return False
    return routes_to_internet(conn, subnet)


def _getter(resource_id: str, kind: str) -> Callable[[sa.Connection], Resource | None]:
    return lambda conn: store.get(conn, resource_id, kind=kind)


def _groups_of(vpc_id: str) -> Callable[[sa.Connection], list[Resource]]:
    return lambda conn: store.select(conn, None, None, "security-group", vpc_id=vpc_id)


def _deleter(resource_id: str) -> Callable[[sa.Connection], None]:
    return lambda conn: store.delete(conn, resource_id)


def _write_seed(directory: Path, seed: Any) -> None:
    from minicloud.services.ec2 import guest

    directory.mkdir(parents=True, exist_ok=True)
    guest.write_seed(directory, seed)


def _apply_limits(container: Any, memory: int, nano_cpus: int) -> bool:
    """A stopped instance whose type changed starts with the new type's limits (True: changed)."""
    if container.host_config.get("Memory") == memory and container.host_config.get("NanoCpus") == nano_cpus:
        return False
    container.host_config["Memory"] = memory
    container.host_config["MemorySwap"] = memory
    container.host_config["NanoCpus"] = nano_cpus
    return True
