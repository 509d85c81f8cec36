"""EC2's metadata tables (created by migration ``0030_ec2``).

    ec2_resources     one row per resource (VPC, subnet, route table, internet gateway, security
                      group, network ACL, key pair, image, instance, address): its AWS-shaped JSON
                      document (``doc``), with the columns lookups need beside it
    ec2_public_ips    the 127.x public addresses in use (Elastic IPs and instances' automatic
                      public addresses): the primary key makes an address taken once
"""

from __future__ import annotations

import sqlalchemy as sa

from minicloud.storage.metadata.schema import UtcDateTime, metadata

ec2_resources = sa.Table(
    "ec2_resources", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("account_id", sa.String(12), nullable=False),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("kind", sa.String(24), nullable=False),
    sa.Column("vpc_id", sa.String(32), nullable=True),
    sa.Column("state", sa.String(16), nullable=True),  # instances: AWS's state name
    sa.Column("name", sa.String(255), nullable=True),  # key pairs, groups, images: the unique name
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("doc", sa.Text, nullable=False),
    sa.Index("ix_ec2_resources_account_id_region_kind", "account_id", "region", "kind"),
    sa.Index("ix_ec2_resources_kind_state", "kind", "state"),
    sa.Index("ix_ec2_resources_vpc_id", "vpc_id"),
)

ec2_public_ips = sa.Table(
    "ec2_public_ips", metadata,
    sa.Column("address", sa.String(15), primary_key=True),
    sa.Column("account_id", sa.String(12), nullable=False),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("owner_id", sa.String(64), nullable=False),  # eipalloc-... or i-...
)
