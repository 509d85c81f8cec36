"""AMIs over minicloud's registry. The EC2 guest's AMI images (``guest.AMIS``: e.g.
``debian-12-amd64-minicloud`` with sshd, ``busybox-minicloud``) and every tag of a ``library/*``
repository (the bootstrap images, named like ``nginx-latest-amd64-minicloud``) are public AMIs owned
by minicloud (ImageOwnerAlias ``minicloud``; ``Owners=amazon`` finds them too), once pushed into the
registry (``minicloud images bootstrap``), with ids derived from the reference (stable across restarts).

RegisterImage takes a registry reference in ImageLocation (``<repository>:<tag>`` or
``<repository>@sha256:...``): AWS's RegisterImage has no field for a container image, so minicloud
reads the one field that names where an image lives. CreateImage commits an instance's container
and pushes it into the registry (``ec2-images/<account>/<ami-id>``), as the controller gets to it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from minicloud.aws.context import RequestContext
from minicloud.registry.auth import authorize_pull
from minicloud.registry.repositories import (
    Repository,
    get_manifest,
    get_repository,
    list_repositories,
    list_tags,
    resolve,
)
from minicloud.services.ec2 import store
from minicloud.services.ec2.base import DryRunOperation, Ec2Base, request_tag_keys
from minicloud.services.ec2.errors import (
    IncorrectInstanceState,
    InvalidAMIIDMalformed,
    InvalidAMIIDNotFound,
    InvalidAMINameDuplicate,
    InvalidInstanceIDNotFound,
    InvalidParameterValue,
    MissingParameter,
    OperationNotPermitted,
)
from minicloud.services.ec2.filters import check, matches, member
from minicloud.services.ec2.ids import new_id, stable_id, well_formed
from minicloud.services.ec2.store import Resource, public

MINICLOUD_OWNER_ID = "000000000000"
MINICLOUD_ALIAS = "minicloud"
PUBLIC_PREFIXES = ("library/",)

IMAGE_FILTERS = {
    "image-id": member("ImageId"), "name": member("Name"), "owner-alias": member("ImageOwnerAlias"),
    "owner-id": member("OwnerId"), "architecture": member("Architecture"), "state": member("State"),
    "image-type": member("ImageType"), "is-public": member("Public"), "root-device-type": member("RootDeviceType"),
    "root-device-name": member("RootDeviceName"), "virtualization-type": member("VirtualizationType"),
    "platform-details": member("PlatformDetails"), "description": member("Description"),
    "hypervisor": member("Hypervisor"), "image-location": member("ImageLocation"),
    "block-device-mapping.device-name": member("BlockDeviceMappings", "DeviceName"),
}


def image_not_found(image_id: str) -> InvalidAMIIDNotFound:
    return InvalidAMIIDNotFound(f"The image id '[{image_id}]' does not exist")


def ami_name(repository: str, tag: str) -> str:
    base = repository.rsplit("/", 1)[-1].removeprefix("ami-")
    return f"{base}-{tag}-amd64-minicloud"


def image_doc(image_id: str, name: str, location: str, reference: str, owner: str, created: datetime, *,
              public_image: bool, description: str = "", alias: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "ImageId": image_id, "ImageLocation": location, "State": "available", "OwnerId": owner,
        "CreationDate": created.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "Public": public_image,
        "Architecture": "x86_64", "ImageType": "machine", "PlatformDetails": "Linux/UNIX",
        "UsageOperation": "RunInstances", "RootDeviceType": "ebs", "RootDeviceName": "/dev/xvda",
        # Only what is true: the root filesystem goes with the instance and is not encrypted. There is no
        # snapshot (no API would know its id), size or volume type to report (the root is the image's layers).
        "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"DeleteOnTermination": True, "Encrypted": False}}],
        "VirtualizationType": "hvm", "Hypervisor": "xen", "EnaSupport": True, "Name": name,
        "Description": description, "BootMode": "uefi-preferred", "Tags": [], "_image": reference,
    }
    if alias:
        doc["ImageOwnerAlias"] = alias
    return doc


def _curated() -> dict[tuple[str, str], tuple[str, str]]:
    """The EC2 guest's AMIs: (repository, tag) -> (AMI name, description)."""
    from minicloud.services.ec2.guest import AMIS

    return {(ami.recipe.repository, ami.recipe.tags[0]): (ami.name, ami.description) for ami in AMIS}


def public_images(conn: sa.Connection, region: str) -> list[Resource]:
    """The EC2 guest's AMI images and the registry's ``library/*`` tags, as public AMIs."""
    curated = _curated()
    curated_repositories = {repository for repository, _ in curated}
    found = []
    for repository in list_repositories(conn):
        if not repository.name.startswith(PUBLIC_PREFIXES) and repository.name not in curated_repositories:
            continue
        for tag in list_tags(conn, repository.id):
            known = curated.get((repository.name, tag))
            if known is None and not repository.name.startswith(PUBLIC_PREFIXES):
                continue
            name, description = known or (ami_name(repository.name, tag),
                                          f"minicloud {repository.name}:{tag} (from minicloud's registry)")
            manifest = get_manifest(conn, repository.id, tag)
            created = manifest.pushed_at if manifest else repository.created_at
            image_id = stable_id("image", repository.name, tag)
            reference = f"{repository.name}:{tag}"
            doc = image_doc(image_id, name, f"{MINICLOUD_ALIAS}/{reference}", reference, MINICLOUD_OWNER_ID, created,
                            public_image=True, alias=MINICLOUD_ALIAS, description=description)
            found.append(Resource(image_id, MINICLOUD_OWNER_ID, region, "image", doc, created_at=created))
    return found


def registry_reference(conn: sa.Connection, location: str) -> str | None:
    """``location`` when it names an image in minicloud's registry (repo:tag or repo@digest)."""
    found = registry_image(conn, location)
    return found[1] if found else None


def registry_image(conn: sa.Connection, location: str) -> tuple[Repository, str] | None:
    """The repository (of whichever account: names are global) and the reference ``location`` names."""
    if "@" in location:
        name, _, reference = location.partition("@")
    else:
        name, _, reference = location.rpartition(":")
        if not name or "/" in reference:
            name, reference = location, "latest"
    repository = get_repository(conn, name)
    if repository is None or resolve(conn, repository.id, reference) is None:
        return None
    return repository, f"{name}@{reference}" if "@" in location else f"{name}:{reference}"


class ImagesMixin(Ec2Base):
    async def visible_images(self, ctx: RequestContext) -> list[Resource]:
        def load(conn: sa.Connection) -> list[Resource]:
            return public_images(conn, ctx.region) + store.select(conn, ctx.account_id, ctx.region, "image")
        return await self.runtime.db.read(load)

    async def image(self, ctx: RequestContext, image_id: str) -> Resource:
        if not well_formed(image_id, "image"):
            raise InvalidAMIIDMalformed(f'Invalid id: "{image_id}" (expecting "ami-...")')
        for image in await self.visible_images(ctx):
            if image.id == image_id:
                return image
        raise image_not_found(image_id)

    async def authorize_image_pull(self, ctx: RequestContext, location: str, *,
                                   other_accounts_only: bool = False) -> None:
        """minicloud pulls a registered AMI's image with its own credentials: the caller must be allowed
        to pull it (ecr:BatchGetImage, ecr:GetDownloadUrlForLayer; another account's repository only
        while its policy grants them). RegisterImage asks always; a launch only for another account's
        repository (the account's own AMI needs no ECR permission to run, as on AWS)."""
        found = await self.runtime.db.read(lambda conn: registry_image(conn, location))
        if found is not None and not (other_accounts_only and found[0].account_id == ctx.account_id):
            await authorize_pull(ctx, found[0])

    async def describe_images(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await self.begin(ctx, params, "DescribeImages")
        check(params.get("Filters"), IMAGE_FILTERS)
        images = await self.visible_images(ctx)
        ids = params.get("ImageIds")
        if ids:
            for image_id in ids:
                if not well_formed(image_id, "image"):
                    raise InvalidAMIIDMalformed(f'Invalid id: "{image_id}" (expecting "ami-...")')
            have = {i.id for i in images}
            for image_id in ids:
                if image_id not in have:
                    raise image_not_found(image_id)
            images = [i for i in images if i.id in ids]
        owners = params.get("Owners")
        if owners:
            images = [i for i in images if self._owned_by(ctx, i, owners)]
        users = params.get("ExecutableUsers")
        if users:
            images = [i for i in images if i.doc["Public"] or any(u in ("self", ctx.account_id) for u in users)]
        images = [i for i in images if matches(i, params.get("Filters"), IMAGE_FILTERS)]
        items, token = self.page(images, params)
        out: dict[str, Any] = {"Images": [public(i.doc) for i in items]}
        if token:
            out["NextToken"] = token
        return out

    @staticmethod
    def _owned_by(ctx: RequestContext, image: Resource, owners: list[str]) -> bool:
        for owner in owners:
            if owner == "self" and image.account_id == ctx.account_id:
                return True
            if owner in ("amazon", MINICLOUD_ALIAS) and image.doc.get("ImageOwnerAlias") == MINICLOUD_ALIAS:
                return True
            if owner == image.doc["OwnerId"]:
                return True
        return False

    async def register_image(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        tags = self.tags_for(params, "image")
        # DryRun is answered after the registry's pull check too (in _register).
        await self.begin(ctx, {**params, "DryRun": False}, "RegisterImage", "image/*", context=request_tag_keys(tags))
        name, location = params.get("Name"), params.get("ImageLocation")
        if not name:
            raise MissingParameter("The request must contain the parameter name")
        if not location:
            raise InvalidParameterValue("minicloud registers an image from its registry: set ImageLocation to "
                                        "'<repository>:<tag>' (or '<repository>@sha256:...')")
        if (params.get("Architecture") or "x86_64") != "x86_64":
            raise InvalidParameterValue(f"Invalid value '{params['Architecture']}' for architecture: minicloud "
                                        "runs x86_64 images")
        image = await self._register(ctx, name, location, params.get("Description") or "", tags,
                                     dry_run=bool(params.get("DryRun")))
        return {"ImageId": image.id}

    async def _register(self, ctx: RequestContext, name: str, location: str, description: str,
                        tags: list[dict[str, str]], *, dry_run: bool = False) -> Resource:
        image_id = new_id("image")
        await self.authorize_image_pull(ctx, location)
        if dry_run:
            raise DryRunOperation("Request would have succeeded, but DryRun flag is set.")

        def register(conn: sa.Connection) -> Resource:
            reference = registry_reference(conn, location)
            if reference is None:
                raise InvalidParameterValue(f"ImageLocation '{location}' is not an image in minicloud's registry "
                                            "(expected '<repository>:<tag>')")
            taken = store.select(conn, ctx.account_id, ctx.region, "image", name=name)
            if taken:
                raise InvalidAMINameDuplicate(f"AMI name {name} is already in use by AMI {taken[0].id}")
            doc = image_doc(image_id, name, location, reference, ctx.account_id, datetime.now(UTC),
                            public_image=False, description=description)
            doc["Tags"] = tags
            image = Resource(image_id, ctx.account_id, ctx.region, "image", doc, name=name)
            store.insert(conn, image)
            return image
        return await self.runtime.db.write(register)

    async def deregister_image(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        image_id = params["ImageId"]
        image = await self.image(ctx, image_id)
        await self.begin_each(ctx, params, "DeregisterImage", [image])
        if image.account_id != ctx.account_id:
            raise OperationNotPermitted(f"You do not own the image {image_id}: minicloud's public images cannot be "
                                        "deregistered")
        await self.runtime.db.write(lambda conn: store.delete(conn, image_id))
        return {"Return": True}

    async def create_image(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        """The instance's root filesystem as a new AMI: recorded ``pending`` here; the controller
        commits the container (paused while it runs), pushes it into the registry as
        ``ec2-images/<account>/<ami-id>:latest`` and makes the image ``available``."""
        instance_id, name = params.get("InstanceId"), params.get("Name")
        if not instance_id:
            raise MissingParameter("The request must contain the parameter InstanceId")
        if not name:
            raise MissingParameter("The request must contain the parameter name")
        image_id = new_id("image")
        repository = f"ec2-images/{ctx.account_id}/{image_id}"
        tags = self.tags_for(params, "image")
        # Authorized on the instance (its tags) and the image it creates (an image ARN has no account).
        source = await self.find(ctx, "instance", instance_id,
                                 lambda i: InvalidInstanceIDNotFound(f"The instance ID '{i}' does not exist"))
        await self.begin_each(ctx, params, "CreateImage", [source], created=[
            (f"arn:aws:ec2:{ctx.region}::image/*", {"ec2:Region": ctx.region, **request_tag_keys(tags)})])

        def create(conn: sa.Connection) -> None:
            instance = store.get(conn, instance_id, kind="instance", account_id=ctx.account_id, region=ctx.region)
            if instance is None:
                raise InvalidInstanceIDNotFound(f"The instance ID '{instance_id}' does not exist")
            if instance.state not in ("running", "stopped", "stopping"):
                raise IncorrectInstanceState(f"The instance '{instance_id}' is not in a valid state for this "
                                             "operation.")
            taken = store.select(conn, ctx.account_id, ctx.region, "image", name=name)
            if taken:
                raise InvalidAMINameDuplicate(f"AMI name {name} is already in use by AMI {taken[0].id}")
            doc = image_doc(image_id, name, f"{ctx.account_id}/{name}", f"{repository}:latest", ctx.account_id,
                            datetime.now(UTC), public_image=False, description=params.get("Description") or "")
            doc.update({"State": "pending", "Tags": tags, "SourceInstanceId": instance_id,
                        "_source_instance": instance_id})
            store.insert(conn, Resource(image_id, ctx.account_id, ctx.region, "image", doc, name=name,
                                        state="pending"))
        await self.runtime.db.write(create)
        self.wake_controller()
        return {"ImageId": image_id}
