"""Security groups and their rules. Every change wakes the instance controller, which hands the
VPC's whole rule set to the data plane (effective on running instances within a second)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from minicloud.aws.context import RequestContext
from minicloud.services.ec2 import builders, sgrules, store
from minicloud.services.ec2.base import Ec2Base, request_tag_keys
from minicloud.services.ec2.errors import (
    CannotDelete,
    DependencyViolation,
    InvalidGroupDuplicate,
    InvalidGroupIdMalformed,
    InvalidGroupNotFound,
    InvalidGroupReserved,
    InvalidParameterValue,
    InvalidPermissionDuplicate,
    InvalidPermissionNotFound,
    InvalidSecurityGroupRuleIdNotFound,
    MissingParameter,
)
from minicloud.services.ec2.filters import member
from minicloud.services.ec2.ids import well_formed
from minicloud.services.ec2.store import Resource, public
from minicloud.services.ec2.vpcs import LIVE_INSTANCE_STATES, vpc_not_found


def group_not_found(group_id: str) -> InvalidGroupNotFound:
    return InvalidGroupNotFound(f"The security group '{group_id}' does not exist")



def _rule_values(key: str, egress: bool) -> Any:
    def extract(resource: Resource) -> list[Any]:
        return [r[key] for r in resource.doc["_rules"] if r["egress"] == egress and r.get(key) is not None]
    return extract


GROUP_FILTERS = {
    "group-id": member("GroupId"), "group-name": member("GroupName"), "description": member("Description"),
    "vpc-id": member("VpcId"), "owner-id": member("OwnerId"),
    "ip-permission.cidr": _rule_values("cidr", False), "ip-permission.from-port": _rule_values("from", False),
    "ip-permission.to-port": _rule_values("to", False), "ip-permission.protocol": _rule_values("proto", False),
    "ip-permission.group-id": _rule_values("group", False),
    "egress.ip-permission.cidr": _rule_values("cidr", True),
    "egress.ip-permission.from-port": _rule_values("from", True),
    "egress.ip-permission.to-port": _rule_values("to", True),
    "egress.ip-permission.protocol": _rule_values("proto", True),
}


def group_view(group: Resource) -> dict[str, Any]:
    rules = group.doc["_rules"]
    return {**public(group.doc), "IpPermissions": sgrules.ip_permissions(rules, egress=False),
            "IpPermissionsEgress": sgrules.ip_permissions(rules, egress=True)}


class SecurityGroupsMixin(Ec2Base):
    async def create_security_group(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name, description = params.get("GroupName"), params.get("Description")
        if not name:
            raise MissingParameter("The request must contain the parameter groupName")
        if not description:
            raise MissingParameter("The request must contain the parameter groupDescription")
        if name == "default":
            raise InvalidGroupReserved("The security group 'default' is reserved")
        if name.lower().startswith("sg-"):
            raise InvalidParameterValue("Group names may not be in the format sg-*")
        if len(name) > 255 or len(description) > 255:
            raise InvalidParameterValue("Group name and description must be at most 255 characters")
        await self.defaults.ensure(ctx.account_id, ctx.region)
        vpc_id = params.get("VpcId") or await self.default_vpc_id(ctx)
        tags = self.tags_for(params, "security-group")
        # Authorized on the VPC (its tags) and on the group it creates (request tags; EC2 gives the new
        # group no ec2:Vpc key: a policy fences the VPC on the VPC's ARN).
        vpc = await self.find(ctx, "vpc", vpc_id, vpc_not_found)
        await self.begin_each(ctx, params, "CreateSecurityGroup", [vpc], created=[
            ("security-group/*", {"ec2:Region": ctx.region, **request_tag_keys(tags)})])

        def create(conn: sa.Connection) -> Resource:
            if store.get(conn, vpc_id, kind="vpc", account_id=ctx.account_id, region=ctx.region) is None:
                raise vpc_not_found(vpc_id)
            if store.select(conn, ctx.account_id, ctx.region, "security-group", vpc_id=vpc_id, name=name):
                raise InvalidGroupDuplicate(f"The security group '{name}' already exists for VPC '{vpc_id}'")
            group = builders.security_group(ctx.account_id, ctx.region, vpc_id, name, description, tags=tags)
            store.insert(conn, group)
            return group
        group = await self.runtime.db.write(create)
        return {"GroupId": group.id, "Tags": group.doc["Tags"], "SecurityGroupArn": group.doc["SecurityGroupArn"]}

    async def default_vpc_id(self, ctx: RequestContext) -> str:
        vpcs = await self.runtime.db.read(lambda conn: store.select(conn, ctx.account_id, ctx.region, "vpc"))
        for vpc in vpcs:
            if vpc.doc.get("IsDefault"):
                return vpc.id
        raise MissingParameter("No default VPC for this user: the request must contain the parameter VpcId")

    async def group(self, ctx: RequestContext, params: dict[str, Any]) -> Resource:
        """The group named by GroupId, or by GroupName in the default VPC."""
        await self.defaults.ensure(ctx.account_id, ctx.region)
        group_id, name = params.get("GroupId"), params.get("GroupName")
        if group_id:
            if not well_formed(group_id, "security-group"):
                raise InvalidGroupIdMalformed(f'Invalid id: "{group_id}" (expecting "sg-...")')
            return await self.find(ctx, "security-group", group_id, group_not_found)
        if not name:
            raise MissingParameter("The request must contain the parameter groupName or groupId")
        vpc_id = await self.default_vpc_id(ctx)
        found = await self.runtime.db.read(lambda conn: store.select(
            conn, ctx.account_id, ctx.region, "security-group", vpc_id=vpc_id, name=name))
        if not found:
            raise InvalidGroupNotFound(f"The security group '{name}' does not exist in default VPC '{vpc_id}'")
        return found[0]

    async def describe_security_groups(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await self.begin(ctx, params, "DescribeSecurityGroups")
        for group_id in params.get("GroupIds") or []:
            if not well_formed(group_id, "security-group"):
                raise InvalidGroupIdMalformed(f'Invalid id: "{group_id}" (expecting "sg-...")')
        groups = await self.select(ctx, "security-group", params.get("GroupIds"), params.get("Filters"),
                                   GROUP_FILTERS, group_not_found)
        names = params.get("GroupNames")
        if names:
            default_vpc = await self.default_vpc_id(ctx)
            in_default = {g.name: g for g in groups if g.vpc_id == default_vpc}
            for name in names:
                if name not in in_default:
                    raise InvalidGroupNotFound(f"The security group '{name}' does not exist in default VPC "
                                               f"'{default_vpc}'")
            groups = [in_default[name] for name in dict.fromkeys(names)]
        items, token = self.page(groups, params)
        out: dict[str, Any] = {"SecurityGroups": [group_view(g) for g in items]}
        if token:
            out["NextToken"] = token
        return out

    async def delete_security_group(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        group = await self.group(ctx, params)
        await self.begin_each(ctx, params, "DeleteSecurityGroup", [group])
        if group.name == "default":
            raise CannotDelete(f'the specified group: "{group.id}" name: "default" cannot be deleted by a user')

        def delete(conn: sa.Connection) -> None:
            for resource in store.in_vpc(conn, group.vpc_id or ""):
                in_use = resource.kind == "instance" and resource.state in LIVE_INSTANCE_STATES and \
                    any(g["GroupId"] == group.id for g in resource.doc.get("SecurityGroups") or [])
                referenced = resource.kind == "security-group" and resource.id != group.id and \
                    any(r.get("group") == group.id for r in resource.doc["_rules"])
                if in_use or referenced:
                    raise DependencyViolation(f"resource {group.id} has a dependent object")
            store.delete(conn, group.id)
        await self.runtime.db.write(delete)
        return {"Return": True, "GroupId": group.id}

    # -- rules -------------------------------------------------------------------------------------------
    async def authorize_security_group_ingress(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return await self._authorize_rules(ctx, params, egress=False)

    async def authorize_security_group_egress(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return await self._authorize_rules(ctx, params, egress=True)

    async def revoke_security_group_ingress(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return await self._revoke_rules(ctx, params, egress=False)

    async def revoke_security_group_egress(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return await self._revoke_rules(ctx, params, egress=True)

    @staticmethod
    def _permissions(params: dict[str, Any]) -> list[dict[str, Any]]:
        """IpPermissions, or the older flat parameters (IpProtocol, FromPort, CidrIp, SourceSecurityGroup*)."""
        permissions = list(params.get("IpPermissions") or [])
        if params.get("IpProtocol") or params.get("CidrIp") or params.get("SourceSecurityGroupName"):
            flat: dict[str, Any] = {"IpProtocol": params.get("IpProtocol") or "-1",
                                    "FromPort": params.get("FromPort"), "ToPort": params.get("ToPort")}
            if params.get("CidrIp"):
                flat["IpRanges"] = [{"CidrIp": params["CidrIp"]}]
            if params.get("SourceSecurityGroupName"):
                flat["UserIdGroupPairs"] = [{"GroupName": params["SourceSecurityGroupName"],
                                             "UserId": params.get("SourceSecurityGroupOwnerId")}]
            permissions.append(flat)
        return permissions

    def _resolve_peers(self, conn: sa.Connection, ctx: RequestContext, group: Resource,
                       rules: list[dict[str, Any]]) -> None:
        """Fill in each referenced group's id (from its name, in the same VPC) and check it exists."""
        for rule in rules:
            if rule["cidr"]:
                continue
            name = rule.pop("group_name", None)
            if rule["group"] is None and name:
                found = store.select(conn, ctx.account_id, ctx.region, "security-group", vpc_id=group.vpc_id,
                                     name=name)
                if not found:
                    raise InvalidGroupNotFound(f"The security group '{name}' does not exist")
                rule["group"] = found[0].id
            peer = store.get(conn, rule["group"] or "", kind="security-group", region=ctx.region)
            if peer is None:
                raise group_not_found(rule["group"] or "")
            if peer.vpc_id != group.vpc_id:
                raise InvalidParameterValue(f"You have specified two resources that belong to different networks: "
                                            f"{group.id} and {peer.id}")

    async def _authorize_rules(self, ctx: RequestContext, params: dict[str, Any], *, egress: bool) -> dict[str, Any]:
        action = "AuthorizeSecurityGroupEgress" if egress else "AuthorizeSecurityGroupIngress"
        group = await self.group(ctx, params)
        await self.begin_each(ctx, params, action, [group])
        rules = sgrules.parse(self._permissions(params), egress=egress, account_id=ctx.account_id)
        tags = self.tags_for(params, "security-group-rule") if params.get("TagSpecifications") else []

        def authorize(conn: sa.Connection) -> list[dict[str, Any]]:
            current = store.get(conn, group.id)
            if current is None:
                raise group_not_found(group.id)
            self._resolve_peers(conn, ctx, current, rules)
            added: list[dict[str, Any]] = []
            for rule in sgrules.with_ids(rules):
                if any(sgrules.same(rule, r) for r in current.doc["_rules"] + added):
                    raise InvalidPermissionDuplicate(f'the specified rule "{sgrules.describe_peer(rule)}" '
                                                     "already exists")
                rule["tags"] = tags
                added.append(rule)
            current.doc["_rules"].extend(added)
            store.save(conn, current)
            return added
        added = await self.runtime.db.write(authorize)
        self.wake_controller()
        return {"Return": True, "SecurityGroupRules": [sgrules.security_group_rule(r, group.id, group.account_id)
                                                       for r in added]}

    async def _revoke_rules(self, ctx: RequestContext, params: dict[str, Any], *, egress: bool) -> dict[str, Any]:
        action = "RevokeSecurityGroupEgress" if egress else "RevokeSecurityGroupIngress"
        group = await self.group(ctx, params)
        await self.begin_each(ctx, params, action, [group])
        rule_ids = params.get("SecurityGroupRuleIds") or []
        rules = sgrules.parse(self._permissions(params), egress=egress, account_id=ctx.account_id) \
            if not rule_ids else []

        def revoke(conn: sa.Connection) -> None:
            current = store.get(conn, group.id)
            if current is None:
                raise group_not_found(group.id)
            self._resolve_peers(conn, ctx, current, rules)
            kept = current.doc["_rules"]
            for rule_id in rule_ids:
                if not any(r["id"] == rule_id and r["egress"] == egress for r in kept):
                    raise InvalidSecurityGroupRuleIdNotFound(f"The security group rule ID '{rule_id}' does not exist")
                kept = [r for r in kept if r["id"] != rule_id]
            for rule in rules:
                if not any(sgrules.same(rule, r) for r in kept):
                    raise InvalidPermissionNotFound("The specified rule does not exist in this security group.")
                kept = [r for r in kept if not sgrules.same(rule, r)]
            current.doc["_rules"] = kept
            store.save(conn, current)
        await self.runtime.db.write(revoke)
        self.wake_controller()
        return {"Return": True}

    async def describe_security_group_rules(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await self.begin(ctx, params, "DescribeSecurityGroupRules")
        filters = params.get("Filters") or []
        group_filter = [f for f in filters if f.get("Name") == "group-id"]
        other = [f for f in filters if f.get("Name") not in ("group-id", "security-group-rule-id")]
        for f in other:
            if not str(f.get("Name", "")).startswith("tag"):
                raise InvalidParameterValue(f"The filter '{f.get('Name')}' is invalid")
        wanted_ids = set(params.get("SecurityGroupRuleIds") or [])
        for f in filters:
            if f.get("Name") == "security-group-rule-id":
                wanted_ids.update(f.get("Values") or [])
        groups = await self.select(ctx, "security-group", None, group_filter, GROUP_FILTERS, group_not_found)
        rules = []
        for group in groups:
            for rule in group.doc["_rules"]:
                if wanted_ids and rule["id"] not in wanted_ids:
                    continue
                tags = {t["Key"]: t["Value"] for t in rule.get("tags") or []}
                if not all(self._tag_match(tags, f) for f in other):
                    continue
                rules.append(sgrules.security_group_rule(rule, group.id, group.account_id))
        for rule_id in params.get("SecurityGroupRuleIds") or []:
            if not any(r["SecurityGroupRuleId"] == rule_id for r in rules):
                raise InvalidSecurityGroupRuleIdNotFound(f"The security group rule ID '{rule_id}' does not exist")
        items, token = self.page(rules, params)
        out: dict[str, Any] = {"SecurityGroupRules": items}
        if token:
            out["NextToken"] = token
        return out

    @staticmethod
    def _tag_match(tags: dict[str, str], f: dict[str, Any]) -> bool:
        name, values = str(f["Name"]), [str(v) for v in f.get("Values") or []]
        if name.startswith("tag:"):
            return tags.get(name[4:]) in values
        if name == "tag-key":
            return any(k in values for k in tags)
        return any(v in values for v in tags.values())
