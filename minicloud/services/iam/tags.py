"""Tags of IAM resources (users, roles, customer-managed policies, instance profiles).

IAM tag keys are unique per resource case-insensitively: tagging with ``costcenter`` when
``CostCenter`` exists replaces it. A resource has at most 50 tags; keys starting with ``aws:`` are
reserved.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import sqlalchemy as sa

from minicloud.iam.tables import iam_tags
from minicloud.services.iam.base import Params, Result, page_list, paged, tag_list
from minicloud.services.iam.errors import InvalidInput, LimitExceeded

MAX_TAGS = 50

TagParams = Sequence[Mapping[str, str]]


def check_new_tags(existing: Sequence[str], new: TagParams) -> None:
    """Validate tags about to be added to a resource whose current keys are ``existing``."""
    keys = [t["Key"].lower() for t in new]
    if len(set(keys)) != len(keys):
        raise InvalidInput("Duplicate tag keys found. Please note that Tag keys are case insensitive.")
    if any(k.startswith("aws:") for k in keys):
        raise InvalidInput("Tag keys starting with 'aws:' are reserved for AWS use.")
    if len({k.lower() for k in existing} | set(keys)) > MAX_TAGS:
        raise LimitExceeded("The number of tags has reached the maximum limit.")


def replace_tags(conn: sa.Connection, resource_type: str, resource_id: str, tags: TagParams) -> None:
    """Add ``tags`` (replacing a tag whose key matches case-insensitively). Call check_new_tags first."""
    where = (iam_tags.c.resource_type == resource_type, iam_tags.c.resource_id == resource_id)
    position = conn.execute(sa.select(sa.func.max(iam_tags.c.position)).where(*where)).scalar() or 0
    for tag in tags:
        key, value = tag["Key"], tag["Value"]
        updated = conn.execute(iam_tags.update().where(*where, iam_tags.c.key_lower == key.lower())
                               .values(key=key, value=value))
        if not updated.rowcount:
            position += 1
            conn.execute(iam_tags.insert().values(resource_type=resource_type, resource_id=resource_id,
                                                  key_lower=key.lower(), key=key, value=value,
                                                  position=position))


def add_tags(conn: sa.Connection, resource_type: str, resource_id: str, tags: TagParams) -> None:
    """TagUser/TagRole/...: validate against the resource's current tags, then add."""
    existing = conn.execute(sa.select(iam_tags.c.key).where(
        iam_tags.c.resource_type == resource_type, iam_tags.c.resource_id == resource_id)).scalars().all()
    check_new_tags(list(existing), tags)
    replace_tags(conn, resource_type, resource_id, tags)


def remove_tags(conn: sa.Connection, resource_type: str, resource_id: str, keys: Sequence[str]) -> None:
    conn.execute(iam_tags.delete().where(
        iam_tags.c.resource_type == resource_type, iam_tags.c.resource_id == resource_id,
        iam_tags.c.key_lower.in_([k.lower() for k in keys])))


def tags_page(conn: sa.Connection, resource_type: str, resource_id: str, params: Params) -> Result:
    rows = list(conn.execute(sa.select(iam_tags.c.position, iam_tags.c.key, iam_tags.c.value).where(
        iam_tags.c.resource_type == resource_type, iam_tags.c.resource_id == resource_id)))
    chosen, marker = page_list(rows, lambda r: f"{r.position:08d}", params)
    return paged("Tags", tag_list([(r.key, r.value) for r in chosen]), marker)


def untag_context(keys: Sequence[str]) -> dict[str, str | list[str]]:
    return {"aws:TagKeys": list(keys)}
