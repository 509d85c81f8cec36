"""EC2 instances (list, launch, start/stop/reboot/terminate, console output), key pairs, Elastic IPs."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from minicloud.console.http import Response, url
from minicloud.console.page import Page, Route, route
from minicloud.console.views import ec2_network
from minicloud.console.views.common import field_error, status_of

INSTANCE = r"(?P<instance>i-[0-9a-f]{1,32})"
ACTIONS = {"start": "StartInstances", "stop": "StopInstances", "reboot": "RebootInstances",
           "terminate": "TerminateInstances"}
INSTANCE_TYPES = ("t3.nano", "t3.micro", "t3.small", "t3.medium", "t3.large", "m5.large", "c5.large")


def _launch_field(code: str, message: str) -> str:
    lowered = message.lower()
    for needle, field in (("subnet", "subnet_id"), ("security group", "group_ids"), ("group", "group_ids"),
                          ("key", "key_name"), ("instance type", "instance_type"), ("image", "image_id"),
                          ("ami", "image_id"), ("user data", "user_data"), ("userdata", "user_data")):
        if needle in lowered or needle.replace(" ", "") in code.lower():
            return field
    return "image_id"


async def _launch_choices(page: Page) -> dict[str, Any]:
    images, _ = await page.attempt("ec2", "DescribeImages", {})
    subnets, _ = await page.attempt("ec2", "DescribeSubnets", {})
    groups, _ = await page.attempt("ec2", "DescribeSecurityGroups", {})
    keys, _ = await page.attempt("ec2", "DescribeKeyPairs", {})
    return {"images": (images or {}).get("Images") or [], "subnets": (subnets or {}).get("Subnets") or [],
            "groups": (groups or {}).get("SecurityGroups") or [], "key_pairs": (keys or {}).get("KeyPairs") or [],
            "instance_types": INSTANCE_TYPES}


async def instances(page: Page, status: int = 200, **extra: Any) -> Response:
    result, failure = await page.attempt("ec2", "DescribeInstances", {})
    found = sorted(ec2_network.all_instances(result), key=lambda i: str(i.get("LaunchTime")), reverse=True)
    values: dict[str, Any] = {"instances": found, "failure": failure, "errors": {}, "values": {}}
    if not page.request.wants_fragment:
        values.update(await _launch_choices(page))
    values.update(extra)
    return page.render("ec2_instances.html", status, **values)


async def launch(page: Page) -> Response:
    form = page.request.form
    params: dict[str, Any] = {"ImageId": form.get("image_id", ""), "InstanceType": form.get("instance_type") or
                              "t3.micro", "MinCount": 1, "MaxCount": 1}
    if form.get("subnet_id"):
        params["SubnetId"] = form["subnet_id"]
    group_ids = [g for g in page.request.form_all("group_ids") if g]
    if group_ids:
        params["SecurityGroupIds"] = group_ids
    if form.get("key_name"):
        params["KeyName"] = form["key_name"]
    if form.get("user_data"):
        params["UserData"] = base64.b64encode(form["user_data"].encode()).decode()  # as SDKs send it
    if form.get("name"):
        params["TagSpecifications"] = [{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": form["name"]}]}]
    result, failure = await page.attempt("ec2", "RunInstances", params)
    if failure is not None:
        return await instances(page, status_of(failure), values=form,
                               errors=field_error(failure, _launch_field(failure.code, failure.message)))
    launched = ((result or {}).get("Instances") or [{}])[0].get("InstanceId", "")
    return await page.done(url(f"/ec2/instances/{launched}"), f"Instance {launched} launched.")


async def instance(page: Page, status: int = 200, **extra: Any) -> Response:
    instance_id = page.request.params["instance"]
    found, failure = await page.attempt("ec2", "DescribeInstances", {"InstanceIds": [instance_id]})
    if failure is not None:
        return page.render("error.html", status_of(failure), code=failure.code, message=failure.message)
    output, output_failure = await page.attempt("ec2", "GetConsoleOutput", {"InstanceId": instance_id})
    text = ""
    if output and output.get("Output"):
        try:
            text = base64.b64decode(output["Output"]).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            text = str(output["Output"])
    addresses, _ = await page.attempt("ec2", "DescribeAddresses", {})
    values: dict[str, Any] = {
        "instance": (ec2_network.all_instances(found) or [{}])[0], "console_output": text,
        "output_failure": output_failure, "action_failure": None,
        "free_addresses": [a for a in (addresses or {}).get("Addresses") or [] if not a.get("AssociationId")],
    }
    values.update(extra)
    return page.render("ec2_instance.html", status, **values)


async def instance_action(page: Page) -> Response:
    instance_id, action = page.request.params["instance"], page.request.params["action"]
    _, failure = await page.attempt("ec2", ACTIONS[action], {"InstanceIds": [instance_id]})
    if failure is not None:
        return await instance(page, status_of(failure), action_failure=failure)
    return await page.done(url(f"/ec2/instances/{instance_id}"), f"{action.capitalize()} requested for {instance_id}.")


# -- key pairs -------------------------------------------------------------------------------------
async def key_pairs(page: Page, status: int = 200, **extra: Any) -> Response:
    result, failure = await page.attempt("ec2", "DescribeKeyPairs", {})
    values: dict[str, Any] = {"key_pairs": (result or {}).get("KeyPairs") or [], "failure": failure, "errors": {},
                              "values": {}}
    values.update(extra)
    return page.render("ec2_key_pairs.html", status, **values)


async def create_key_pair(page: Page) -> Response:
    name = page.form("key_name").strip()
    key_type = "ed25519" if page.form("key_type") == "ed25519" else "rsa"
    result, failure = await page.attempt("ec2", "CreateKeyPair", {"KeyName": name, "KeyType": key_type})
    if failure is not None:
        return await key_pairs(page, status_of(failure), errors=field_error(failure, "key_name"),
                               values=page.request.form)
    material = (result or {}).get("KeyMaterial", "")
    return await page.done(url("/ec2/key-pairs"), f"Key pair {name} created.",
                           reveal={"KeyName": name, "KeyMaterial": material})


async def delete_key_pair(page: Page) -> Response:
    name = page.form("key_name")
    _, failure = await page.attempt("ec2", "DeleteKeyPair", {"KeyName": name})
    if failure is not None:
        return await key_pairs(page, status_of(failure), action_failure=failure)
    return await page.done(url("/ec2/key-pairs"), f"Key pair {name} deleted.")


# -- Elastic IPs ---------------------------------------------------------------------------------------
async def addresses(page: Page, status: int = 200, **extra: Any) -> Response:
    result, failure = await page.attempt("ec2", "DescribeAddresses", {})
    values: dict[str, Any] = {"addresses": (result or {}).get("Addresses") or [], "failure": failure,
                              "action_failure": None}
    values.update(extra)
    return page.render("ec2_addresses.html", status, **values)


async def _address_change(page: Page, operation: str, params: dict[str, Any], notice: str,
                          back: str | None = None) -> Response:
    _, failure = await page.attempt("ec2", operation, params)
    if failure is not None:
        return await addresses(page, status_of(failure), action_failure=failure)
    return await page.done(back or url("/ec2/addresses"), notice)


async def allocate_address(page: Page) -> Response:
    return await _address_change(page, "AllocateAddress", {"Domain": "vpc"}, "Elastic IP allocated.")


async def release_address(page: Page) -> Response:
    allocation = page.form("allocation_id")
    return await _address_change(page, "ReleaseAddress", {"AllocationId": allocation}, f"{allocation} released.")


async def associate_address(page: Page) -> Response:
    allocation, instance_id = page.form("allocation_id"), page.form("instance_id")
    return await _address_change(page, "AssociateAddress", {"AllocationId": allocation, "InstanceId": instance_id},
                                 f"{allocation} associated with {instance_id}.", url(f"/ec2/instances/{instance_id}"))


async def disassociate_address(page: Page) -> Response:
    association = page.form("association_id")
    return await _address_change(page, "DisassociateAddress", {"AssociationId": association},
                                 f"{association} disassociated.")


ROUTES: list[Route] = [
    route("GET", "/ec2/instances", instances),
    route("POST", "/ec2/instances", launch),
    route("GET", f"/ec2/instances/{INSTANCE}", instance),
    route("POST", f"/ec2/instances/{INSTANCE}/(?P<action>start|stop|reboot|terminate)", instance_action),
    route("GET", "/ec2/key-pairs", key_pairs),
    route("POST", "/ec2/key-pairs", create_key_pair),
    route("POST", "/ec2/key-pairs/delete", delete_key_pair),
    route("GET", "/ec2/addresses", addresses),
    route("POST", "/ec2/addresses", allocate_address),
    route("POST", "/ec2/addresses/release", release_address),
    route("POST", "/ec2/addresses/associate", associate_address),
    route("POST", "/ec2/addresses/disassociate", disassociate_address),
    *ec2_network.ROUTES,
]
