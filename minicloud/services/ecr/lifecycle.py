"""ECR lifecycle policies: validation, the rules' verdicts, and the controller that applies them.

Rules are taken in ascending ``rulePriority``. An image belongs to the first rule whose selection
matches it (a rule with ``tagStatus: any`` must have the highest priority number); a lower-priority
rule never expires it. ``imageCountMoreThan`` keeps the newest ``countNumber`` images of its rule,
``sinceImagePushed`` expires images pushed more than ``countNumber`` days ago.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson

from minicloud.services.ecr.errors import InvalidParameterException

if TYPE_CHECKING:
    from minicloud.runtime import Runtime

log = logging.getLogger("minicloud.ecr")


@dataclass(frozen=True, slots=True)
class ImageInfo:
    digest: str
    tags: tuple[str, ...]
    pushed_at: datetime


@dataclass(frozen=True, slots=True)
class Rule:
    priority: int
    tag_status: str
    prefixes: tuple[str, ...]
    patterns: tuple[str, ...]
    count_type: str
    count_number: int

    def selects(self, image: ImageInfo) -> bool:
        if self.tag_status == "untagged":
            return not image.tags
        if self.tag_status == "any":
            return True
        if not image.tags:
            return False
        if self.prefixes and not all(any(t.startswith(p) for t in image.tags) for p in self.prefixes):
            return False
        return not self.patterns or all(any(fnmatch.fnmatchcase(t, p) for t in image.tags)
                                        for p in self.patterns)


def _invalid(reason: str) -> InvalidParameterException:
    return InvalidParameterException("Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: "
                                     f"'Lifecycle policy validation failure: {reason}'")


def _rule(raw: Any) -> Rule:
    if not isinstance(raw, dict):
        raise _invalid("a rule must be an object")
    priority = raw.get("rulePriority")
    selection = raw.get("selection")
    action = raw.get("action")
    if not isinstance(priority, int) or priority < 1:
        raise _invalid("rulePriority must be a positive integer")
    if not isinstance(selection, dict) or not isinstance(action, dict) or action.get("type") != "expire":
        raise _invalid("each rule needs a selection and an action of type expire")
    tag_status = selection.get("tagStatus")
    if tag_status not in ("tagged", "untagged", "any"):
        raise _invalid("tagStatus must be tagged, untagged or any")
    prefixes = selection.get("tagPrefixList") or []
    patterns = selection.get("tagPatternList") or []
    if tag_status == "tagged" and not prefixes and not patterns:
        raise _invalid("tagPrefixList or tagPatternList is required when tagStatus is tagged")
    if prefixes and patterns:
        raise _invalid("tagPrefixList and tagPatternList cannot be used together")
    count_type = selection.get("countType")
    count_number = selection.get("countNumber")
    if count_type not in ("imageCountMoreThan", "sinceImagePushed"):
        raise _invalid("countType must be imageCountMoreThan or sinceImagePushed")
    if not isinstance(count_number, int) or count_number < 1:
        raise _invalid("countNumber must be a positive integer")
    if count_type == "sinceImagePushed" and selection.get("countUnit") != "days":
        raise _invalid("countUnit must be days for sinceImagePushed")
    return Rule(priority, tag_status, tuple(prefixes), tuple(patterns), count_type, count_number)


def parse_lifecycle_policy(text: str) -> list[Rule]:
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise _invalid("the policy is not valid JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("rules"), list) or not doc["rules"]:
        raise _invalid("the policy needs a non-empty list of rules")
    rules = sorted((_rule(r) for r in doc["rules"]), key=lambda r: r.priority)
    if len({r.priority for r in rules}) != len(rules):
        raise _invalid("rulePriority values must be unique")
    if any(r.tag_status == "any" for r in rules[:-1]):
        raise _invalid("a rule with tagStatus any must have the highest rulePriority")
    return rules


def validate_lifecycle_policy(text: str) -> None:
    parse_lifecycle_policy(text)


def expired(rules: Sequence[Rule], images: Sequence[ImageInfo], now: datetime) -> list[ImageInfo]:
    """The images the rules expire."""
    claimed: set[str] = set()
    doomed: list[ImageInfo] = []
    for rule in rules:
        selected = [i for i in images if i.digest not in claimed and rule.selects(i)]
        claimed.update(i.digest for i in selected)
        if rule.count_type == "imageCountMoreThan":
            newest_first = sorted(selected, key=lambda i: i.pushed_at, reverse=True)
            doomed.extend(newest_first[rule.count_number:])
        else:
            limit = now - timedelta(days=rule.count_number)
            doomed.extend(i for i in selected if i.pushed_at < limit)
    return doomed


class LifecycleController:
    """Applies every repository's lifecycle policy, for real: expired images are deleted."""

    name = "ecr-lifecycle"
    interval = 60.0

    def __init__(self, runtime: Runtime) -> None:
        self.db = runtime.db

    async def reconcile(self) -> None:
        from minicloud.registry.repositories import list_repositories

        repositories = await self.db.read(lambda conn: list_repositories(conn))
        for repository in repositories:
            if repository.lifecycle_policy:
                try:
                    rules = parse_lifecycle_policy(repository.lifecycle_policy)
                except InvalidParameterException:
                    continue
                await self.apply(repository.id, rules, datetime.now(UTC))

    async def apply(self, repository_id: int, rules: Sequence[Rule], now: datetime) -> list[str]:
        from minicloud.registry.repositories import delete_manifest, list_manifests, tags_by_digest

        def expire(conn: Any) -> list[str]:
            tags = tags_by_digest(conn, repository_id)
            images = [ImageInfo(m.digest, tuple(tags.get(m.digest, ())), m.pushed_at)
                      for m in list_manifests(conn, repository_id)]
            gone = [i.digest for i in expired(rules, images, now)]
            for digest in gone:
                delete_manifest(conn, repository_id, digest)
            return gone
        gone = await self.db.write(expire)
        if gone:
            log.info("lifecycle policy of repository %s expired %d images", repository_id, len(gone))
        return gone
