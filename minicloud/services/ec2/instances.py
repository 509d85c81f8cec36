"""Instances: RunInstances records what should run (state pending); ``InstanceController`` makes
it so. Start/Stop/Reboot/Terminate change the desired state; Describe* read it."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from minicloud.aws.context import RequestContext
from minicloud.services.ec2 import launch, store
from minicloud.services.ec2.authorization import CREATED_TYPES, authorize_launch, launch_checks, resolve_placement
from minicloud.services.ec2.base import DryRunOperation
from minicloud.services.ec2.catalog import INSTANCE_TYPES
from minicloud.services.ec2.errors import (
    IncorrectInstanceState,
    InsufficientInstanceCapacity,
    InvalidGroupNotFound,
    InvalidInstanceIDMalformed,
    InvalidInstanceIDNotFound,
    InvalidParameterCombination,
    InvalidParameterValue,
    MissingParameter,
    OperationNotPermitted,
)
from minicloud.services.ec2.filters import check, matches, member
from minicloud.services.ec2.ids import well_formed
from minicloud.services.ec2.images import ImagesMixin
from minicloud.services.ec2.launch import STATE_CODES
from minicloud.services.ec2.profiles import authorize_pass_role
from minicloud.services.ec2.store import Resource, public

CONSOLE_LIMIT = 64 * 1024


def _state(resource: Resource) -> list[Any]:
    return [resource.state]


INSTANCE_FILTERS = {
    "instance-id": member("InstanceId"), "instance-state-name": _state,
    "instance-state-code": lambda r: [STATE_CODES.get(r.state or "", 0)], "instance-type": member("InstanceType"),
    "image-id": member("ImageId"), "vpc-id": member("VpcId"), "subnet-id": member("SubnetId"),
    "private-ip-address": member("PrivateIpAddress"), "ip-address": member("PublicIpAddress"),
    "availability-zone": member("Placement", "AvailabilityZone"), "key-name": member("KeyName"),
    "reservation-id": member("_reservation"), "instance.group-id": member("SecurityGroups", "GroupId"),
    "instance.group-name": member("SecurityGroups", "GroupName"), "group-id": member("SecurityGroups", "GroupId"),
    "group-name": member("SecurityGroups", "GroupName"), "private-dns-name": member("PrivateDnsName"),
    "dns-name": member("PublicDnsName"), "iam-instance-profile.arn": member("IamInstanceProfile", "Arn"),
    "launch-index": member("AmiLaunchIndex"), "architecture": member("Architecture"),
    "client-token": member("ClientToken"), "root-device-type": member("RootDeviceType"),
    "network-interface.mac-address": member("NetworkInterfaces", "MacAddress"),
}
STATUS_FILTERS = {"instance-state-name": _state, "availability-zone": member("Placement", "AvailabilityZone"),
                  "instance-state-code": INSTANCE_FILTERS["instance-state-code"],
                  "instance-status.status": lambda r: ["ok" if r.state == "running" else "not-applicable"],
                  "system-status.status": lambda r: ["ok" if r.state == "running" else "not-applicable"]}


def _time(value: Any) -> Any:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def instance_view(instance: Resource) -> dict[str, Any]:
    doc = public(instance.doc)
    state = instance.state or "pending"
    doc["State"] = {"Code": STATE_CODES[state], "Name": state}
    doc["LaunchTime"] = _time(doc["LaunchTime"])
    for interface in doc.get("NetworkInterfaces") or []:
        interface["Attachment"]["AttachTime"] = _time(interface["Attachment"]["AttachTime"])
        interface["Attachment"]["Status"] = "attached" if state != "terminated" else "detached"
        if doc.get("PublicIpAddress"):
            interface["Association"] = {"PublicIp": doc["PublicIpAddress"], "PublicDnsName": doc["PublicDnsName"],
                                        "IpOwnerId": "amazon" if not doc.get("_eip") else instance.account_id}
    return doc


def _not_found(ids: list[str]) -> InvalidInstanceIDNotFound:
    if len(ids) == 1:
        return InvalidInstanceIDNotFound(f"The instance ID '{ids[0]}' does not exist")
    return InvalidInstanceIDNotFound(f"The instance IDs '{', '.join(ids)}' do not exist")


class InstancesMixin(ImagesMixin):
    async def run_instances(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        """Validate, resolve what the launch uses (the default subnet and group when none is named),
        authorize ec2:RunInstances on each of those resources (and iam:PassRole, the image's pull),
        answer DryRun only once every check passed, then write the instances."""
        tags_by_type = {kind: self.tags_for(params, kind) for kind in CREATED_TYPES}
        image_id = params.get("ImageId")
        if not image_id:
            raise MissingParameter("The request must contain the parameter ImageId")
        image = await self.image(ctx, image_id)
        req = launch.parse_request(params, ctx.account_id, ctx.region, image, tags_by_type["instance"])
        await self.defaults.ensure(ctx.account_id, ctx.region)
        placement = await self.runtime.db.read(lambda conn: resolve_placement(conn, req))
        await authorize_launch(ctx, launch_checks(req, placement, tags_by_type))
        if not image.doc.get("Public") and "_source_instance" not in image.doc:  # registered (not CreateImage's)
            await self.authorize_image_pull(ctx, image.doc["_image"], other_accounts_only=True)
        await authorize_pass_role(ctx, self.runtime.db, req.profile_name, req.profile_arn)
        if params.get("DryRun"):
            raise DryRunOperation("Request would have succeeded, but DryRun flag is set.")
        if self.runtime.engine is None:
            raise InsufficientInstanceCapacity("minicloud's container engine is not running: no instance can be "
                                               "launched (start minicloud with the engine enabled)")
        # The launch uses exactly what was authorized (it fails if one of them went away meanwhile).
        req.subnet_id, req.zone = placement.subnet.id, None
        req.group_ids, req.group_names = [g.id for g in placement.groups], []
        instances = await self.runtime.db.write(lambda conn: launch.launch(conn, req, self.settings.max_instances))
        self.wake_controller()
        first = instances[0]
        return {"ReservationId": first.doc["_reservation"], "OwnerId": ctx.account_id, "Groups": [],
                "Instances": [instance_view(i) for i in instances]}

    # -- reading -------------------------------------------------------------------------------------
    async def _instances(self, ctx: RequestContext, ids: list[str] | None) -> list[Resource]:
        for instance_id in ids or []:
            if not well_formed(instance_id, "instance"):
                raise InvalidInstanceIDMalformed(f'Invalid id: "{instance_id}"')
        wanted = list(dict.fromkeys(ids)) if ids else None
        found = await self.runtime.db.read(lambda conn: store.select(conn, ctx.account_id, ctx.region, "instance",
                                                                     ids=wanted))
        if wanted:
            missing = [i for i in wanted if i not in {r.id for r in found}]
            if missing:
                raise _not_found(missing)
        return found

    async def describe_instances(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await self.begin(ctx, params, "DescribeInstances")
        ids = params.get("InstanceIds")
        if ids and params.get("MaxResults") is not None:
            raise InvalidParameterCombination("The parameter instancesSet cannot be used with the parameter "
                                              "maxResults")
        check(params.get("Filters"), INSTANCE_FILTERS)
        instances = [i for i in await self._instances(ctx, ids) if matches(i, params.get("Filters"), INSTANCE_FILTERS)]
        items, token = self.page(instances, params)
        reservations: dict[str, dict[str, Any]] = {}
        for instance in items:
            reservation = reservations.setdefault(instance.doc["_reservation"], {
                "ReservationId": instance.doc["_reservation"], "OwnerId": instance.account_id, "Groups": [],
                "Instances": []})
            reservation["Instances"].append(instance_view(instance))
        out: dict[str, Any] = {"Reservations": list(reservations.values())}
        if token:
            out["NextToken"] = token
        return out

    async def describe_instance_status(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await self.begin(ctx, params, "DescribeInstanceStatus")
        check(params.get("Filters"), STATUS_FILTERS)
        instances = await self._instances(ctx, params.get("InstanceIds"))
        if not params.get("IncludeAllInstances"):
            instances = [i for i in instances if i.state == "running"]
        instances = [i for i in instances if matches(i, params.get("Filters"), STATUS_FILTERS)]
        items, token = self.page(instances, params)
        statuses = []
        for instance in items:
            ok = instance.state == "running"
            status = {"Status": "ok" if ok else "not-applicable",
                      "Details": [{"Name": "reachability", "Status": "passed"}] if ok else []}
            statuses.append({
                "AvailabilityZone": instance.doc["Placement"]["AvailabilityZone"], "InstanceId": instance.id,
                "InstanceState": {"Code": STATE_CODES[instance.state or "pending"], "Name": instance.state},
                "InstanceStatus": status, "SystemStatus": status, "Events": []})
        out: dict[str, Any] = {"InstanceStatuses": statuses}
        if token:
            out["NextToken"] = token
        return out

    # -- life cycle ------------------------------------------------------------------------------------
    async def _transition(self, ctx: RequestContext, params: dict[str, Any], action: str,
                          change: Any) -> list[dict[str, Any]]:
        ids = params.get("InstanceIds") or []
        if not ids:
            raise MissingParameter("The request must contain the parameter InstanceId")
        await self.begin_each(ctx, params, action, await self._instances(ctx, ids))

        def apply(conn: sa.Connection) -> list[dict[str, Any]]:
            changes = []
            for instance_id in dict.fromkeys(ids):
                instance = store.get(conn, instance_id)
                assert instance is not None
                previous = instance.state or "pending"
                change(instance)
                if instance.state != previous or action == "RebootInstances":
                    store.save(conn, instance)
                current = instance.state or "pending"
                changes.append({"InstanceId": instance_id,
                                "CurrentState": {"Code": STATE_CODES[current], "Name": current},
                                "PreviousState": {"Code": STATE_CODES[previous], "Name": previous}})
            return changes
        changes = await self.runtime.db.write(apply)
        self.wake_controller()
        return changes

    async def stop_instances(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        force = bool(params.get("Force"))

        def stop(instance: Resource) -> None:
            if instance.state in ("shutting-down", "terminated"):
                raise IncorrectInstanceState(f"The instance '{instance.id}' is not in a state from which it can be "
                                             "stopped.")
            if instance.state in ("pending", "running"):
                instance.state = "stopping"
                instance.doc["_desired"] = "stopped"
                instance.doc["_force"] = force
                instance.doc["StateTransitionReason"] = f"User initiated ({_now()})"
                instance.doc["StateReason"] = {"Code": "Client.UserInitiatedShutdown",
                                               "Message": "Client.UserInitiatedShutdown: User initiated shutdown"}
        return {"StoppingInstances": await self._transition(ctx, params, "StopInstances", stop)}

    async def start_instances(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        def start(instance: Resource) -> None:
            if instance.state in ("shutting-down", "terminated", "stopping"):
                raise IncorrectInstanceState(f"The instance '{instance.id}' is not in a state from which it can be "
                                             "started.")
            if instance.state == "stopped":
                instance.state = "pending"
                instance.doc["_desired"] = "running"
                instance.doc["StateTransitionReason"] = ""
                instance.doc.pop("StateReason", None)
        return {"StartingInstances": await self._transition(ctx, params, "StartInstances", start)}

    async def terminate_instances(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        def terminate(instance: Resource) -> None:
            if instance.doc.get("_disable_api_termination") and instance.state != "terminated":
                raise OperationNotPermitted(f"The instance '{instance.id}' may not be terminated. Modify its "
                                            "'disableApiTermination' instance attribute and try again.")
            if instance.state not in ("shutting-down", "terminated"):
                instance.state = "shutting-down"
                instance.doc["_desired"] = "terminated"
                instance.doc["StateTransitionReason"] = f"User initiated ({_now()})"
                instance.doc["StateReason"] = {"Code": "Client.UserInitiatedShutdown",
                                               "Message": "Client.UserInitiatedShutdown: User initiated shutdown"}
        return {"TerminatingInstances": await self._transition(ctx, params, "TerminateInstances", terminate)}

    async def reboot_instances(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        def reboot(instance: Resource) -> None:
            if instance.state in ("shutting-down", "terminated"):
                raise IncorrectInstanceState(f"The instance '{instance.id}' is not in a state from which it can be "
                                             "rebooted.")
            if instance.state == "running":
                instance.doc["_reboots"] = int(instance.doc.get("_reboots") or 0) + 1
        await self._transition(ctx, params, "RebootInstances", reboot)
        return {}

    # -- console and attributes ---------------------------------------------------------------------------
    async def get_console_output(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        instance_id = params["InstanceId"]
        await self.begin_each(ctx, params, "GetConsoleOutput", await self._instances(ctx, [instance_id]))
        text = ""
        engine = self.runtime.engine
        container = engine.workloads.find("ec2", instance_id) if engine is not None else None
        if container is not None:
            text = await _read_console(Path(engine.workloads.log_path(container)))
        return {"InstanceId": instance_id, "Timestamp": datetime.now(UTC),
                "Output": base64.b64encode(text.encode()).decode()}

    async def describe_instance_attribute(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        instance_id, attribute = params["InstanceId"], params["Attribute"]
        instance = (await self._instances(ctx, [instance_id]))[0]
        await self.begin_each(ctx, params, "DescribeInstanceAttribute", [instance])
        doc = instance.doc
        values: dict[str, Any] = {
            "instanceType": ("InstanceType", {"Value": doc["InstanceType"]}),
            "userData": ("UserData", {"Value": doc["_user_data"]} if doc.get("_user_data") else {}),
            "disableApiTermination": ("DisableApiTermination", {"Value": bool(doc["_disable_api_termination"])}),
            "instanceInitiatedShutdownBehavior": ("InstanceInitiatedShutdownBehavior",
                                                  {"Value": doc["_shutdown_behavior"]}),
            "groupSet": ("Groups", doc["SecurityGroups"]),
            "rootDeviceName": ("RootDeviceName", {"Value": doc["RootDeviceName"]}),
            "sourceDestCheck": ("SourceDestCheck", {"Value": True}),
            "ebsOptimized": ("EbsOptimized", {"Value": False}),
            "enaSupport": ("EnaSupport", {"Value": True}),
            "blockDeviceMapping": ("BlockDeviceMappings", []),
            "disableApiStop": ("DisableApiStop", {"Value": False}),
        }
        if attribute not in values:
            raise InvalidParameterValue(f"Value ({attribute}) for parameter attribute is invalid. "
                                        "Unknown attribute.")
        key, value = values[attribute]
        return {"InstanceId": instance_id, key: value}

    async def modify_instance_attribute(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        instance_id = params["InstanceId"]
        changes = self._attribute_changes(params)
        # Authorized on the instance and, when it changes them, on each security group named.
        instances = await self._instances(ctx, [instance_id])
        groups = [await self.find(ctx, "security-group", group_id, _group_not_found)
                  for group_id in changes.get("Groups") or []]
        await self.begin_each(ctx, params, "ModifyInstanceAttribute", instances + groups)
        if len(changes) != 1:
            raise InvalidParameterCombination("Specify exactly one attribute to modify")
        (name, value), = changes.items()

        def modify(conn: sa.Connection) -> None:
            instance = store.get(conn, instance_id)
            assert instance is not None
            if name in ("InstanceType", "UserData") and instance.state != "stopped":
                raise IncorrectInstanceState(f"The instance '{instance_id}' is not in the 'stopped' state.")
            if name == "InstanceType":
                if value not in INSTANCE_TYPES:
                    raise InvalidParameterValue(f"Invalid value '{value}' for InstanceType.")
                instance.doc["InstanceType"] = value
            elif name == "UserData":
                instance.doc["_user_data"] = value
            elif name == "DisableApiTermination":
                instance.doc["_disable_api_termination"] = bool(value)
            elif name == "InstanceInitiatedShutdownBehavior":
                if value not in ("stop", "terminate"):
                    raise InvalidParameterValue(f"Invalid value '{value}' for instanceInitiatedShutdownBehavior.")
                instance.doc["_shutdown_behavior"] = value
            elif name == "Groups":
                groups = []
                for group_id in value:
                    group = store.get(conn, group_id, kind="security-group", account_id=ctx.account_id,
                                      region=ctx.region)
                    if group is None or group.vpc_id != instance.vpc_id:
                        raise InvalidGroupNotFound(f"The security group '{group_id}' does not exist in VPC "
                                                   f"'{instance.vpc_id}'")
                    groups.append({"GroupName": group.name, "GroupId": group.id})
                instance.doc["SecurityGroups"] = groups
                for interface in instance.doc["NetworkInterfaces"]:
                    interface["Groups"] = groups
            store.save(conn, instance)
        await self.runtime.db.write(modify)
        self.wake_controller()
        return {}

    async def modify_instance_metadata_options(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        instance_id = params["InstanceId"]
        await self.begin_each(ctx, params, "ModifyInstanceMetadataOptions", await self._instances(ctx, [instance_id]))
        allowed = {"HttpTokens": ("optional", "required"), "HttpEndpoint": ("enabled", "disabled"),
                   "InstanceMetadataTags": ("enabled", "disabled")}
        changes: dict[str, Any] = {}
        for key, values in allowed.items():
            value = params.get(key)
            if value is not None:
                if value not in values:
                    raise InvalidParameterValue(f"Value ({value}) for parameter {key} is invalid.")
                changes[key] = value
        hops = params.get("HttpPutResponseHopLimit")
        if hops is not None:
            if not 1 <= int(hops) <= 64:
                raise InvalidParameterValue(f"Value ({hops}) for parameter HttpPutResponseHopLimit is invalid.")
            changes["HttpPutResponseHopLimit"] = int(hops)

        def modify(conn: sa.Connection) -> dict[str, Any]:
            instance = store.get(conn, instance_id)
            assert instance is not None
            if instance.state == "terminated":
                raise IncorrectInstanceState(f"The instance '{instance_id}' is not in a valid state for this "
                                             "operation.")
            options = {**instance.doc["MetadataOptions"], **changes, "State": "applied"}
            instance.doc["MetadataOptions"] = options
            store.save(conn, instance)
            return dict(options)
        options = await self.runtime.db.write(modify)
        return {"InstanceId": instance_id, "InstanceMetadataOptions": options}

    @staticmethod
    def _attribute_changes(params: dict[str, Any]) -> dict[str, Any]:
        changes: dict[str, Any] = {}
        for name in ("InstanceType", "DisableApiTermination", "InstanceInitiatedShutdownBehavior"):
            if params.get(name) is not None:
                changes[name] = params[name]["Value"]
        if params.get("UserData") is not None:
            changes["UserData"] = _user_data_value(params["UserData"].get("Value"))
        if params.get("Groups"):
            changes["Groups"] = list(params["Groups"])
        attribute, value = params.get("Attribute"), params.get("Value")
        if attribute:
            key = {"instanceType": "InstanceType", "disableApiTermination": "DisableApiTermination",
                   "instanceInitiatedShutdownBehavior": "InstanceInitiatedShutdownBehavior",
                   "userData": "UserData"}.get(attribute)
            if key is None:
                raise InvalidParameterValue(f"Value ({attribute}) for parameter attribute is invalid.")
            if key == "DisableApiTermination":
                changes[key] = str(value).lower() == "true"
            elif key == "UserData":
                changes[key] = _user_data_value(value)
            else:
                changes[key] = value
        return changes


def _group_not_found(group_id: str) -> InvalidGroupNotFound:
    return InvalidGroupNotFound(f"The security group '{group_id}' does not exist")


def _user_data_value(value: Any) -> str | None:
    """ModifyInstanceAttribute's user data (a blob: raw bytes) as stored (base64), like RunInstances'."""
    if value is None or value == b"" or value == "":
        return None
    raw = value if isinstance(value, bytes) else str(value).encode()
    try:  # the AWS CLI sends the base64 text it was given, encoded once more: keep what the user meant
        decoded = base64.b64decode(raw, validate=True)
        if base64.b64encode(decoded) == raw.strip():
            raw = decoded
    except (binascii.Error, ValueError):
        pass
    return base64.b64encode(raw).decode()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S GMT")


async def _read_console(path: Path) -> str:
    import asyncio

    def read() -> str:
        try:
            with path.open("rb") as f:
                f.seek(0, 2)
                size = f.tell()
                f.seek(max(0, size - CONSOLE_LIMIT * 2))
                lines = f.read().splitlines()
        except OSError:
            return ""
        text = []
        for line in lines:
            try:
                text.append(json.loads(line).get("log", ""))
            except ValueError:
                continue
        return "".join(text)[-CONSOLE_LIMIT:]
    return await asyncio.to_thread(read)

