"""Replication configuration: Put/Get/DeleteBucketReplication validated as S3 does, the rules a
new object version is matched against, and what the write path records for the replication
controller (``replicator.py``), which does the copying.

Stored (bucket ``replication`` column) as the JSON of the configuration as S3 answers it back:
{"Role": ..., "Rules": [...]}, each rule with its ID (made up when none was given) and, for a
V2 rule (one with a ``Filter``), its Priority (0 when none was given).

Which versions are replicated: those written after the configuration (PutObject, POST,
CopyObject, CompleteMultipartUpload) that an enabled rule selects (V1: its Prefix; V2: its
Filter's Prefix, Tag, And, minus what its Not excludes), and the delete markers of DeleteObject
(s) where the rule selecting the key replicates them (every V1 rule; a V2 rule whose
DeleteMarkerReplication is Enabled; never a tag-based one). Not replicated, as on S3: replicas
themselves, SSE-KMS objects unless the rule opts in (SourceSelectionCriteria
SseKmsEncryptedObjects, with a ReplicaKmsKeyID), objects written in GLACIER or DEEP_ARCHIVE, the
delete markers of lifecycle expiration, and deletions of a version by its id. Such a version gets
``replication_status`` PENDING in the transaction that writes it; the controller turns it into
COMPLETED or FAILED, and writes the replicas (REPLICA) with it.

S3's error wording is kept where it is known (source versioning, missing or unversioned
destination, DeleteMarkerReplication and Priority by schema version, tag rules with delete
marker replication, ReplicaKmsKeyID); the rest (duplicate priorities, mixing V1 and V2 rules)
are minicloud's own sentences under S3's error codes.
"""

from __future__ import annotations

import base64
import functools
import json
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from minicloud.aws.context import RequestContext
from minicloud.runtime import Runtime
from minicloud.services.s3 import store
from minicloud.services.s3.encryption import EncryptionOperations
from minicloud.services.s3.errors import (
    InvalidArgument,
    InvalidRequest,
    MalformedXML,
    NotImplementedFeature,
    ReplicationConfigurationNotFoundError,
)
from minicloud.services.s3.store import Bucket
from minicloud.services.s3.tables import s3_objects

PENDING, COMPLETED, FAILED, REPLICA = "PENDING", "COMPLETED", "FAILED", "REPLICA"
MAX_RULES = 1000
S3_SERVICE = "s3.amazonaws.com"
BUCKET_ARN_PREFIX = "arn:aws:s3:::"
UNREPLICATED_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})
REPLICA_CLASSES = frozenset({"STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING",
                             "GLACIER", "DEEP_ARCHIVE", "GLACIER_IR"})
_STATUSES = ("Enabled", "Disabled")


@dataclass(frozen=True, slots=True)
class Selector:
    """What a rule selects: a key prefix and tags (all required), minus the exclusions of Not."""

    prefix: str
    tags: tuple[tuple[str, str], ...]
    not_prefixes: tuple[str, ...] = ()
    not_tags: tuple[tuple[str, str], ...] = ()

    def selects_key(self, key: str) -> bool:
        """Whether the rule's prefixes select ``key``, whatever the version's tags."""
        return key.startswith(self.prefix) and not any(key.startswith(p) for p in self.not_prefixes)

    def selects(self, key: str, tags: dict[str, str] | None) -> bool:
        """Whether the rule applies to a version with ``key`` and ``tags`` (None: a delete
        marker, which has no tags: a rule that tests tags never selects it)."""
        if not self.selects_key(key):
            return False
        if tags is None:
            return not self.tags and not self.not_tags
        if any(tags.get(k) != v for k, v in self.tags):
            return False
        return not any(tags.get(k) == v for k, v in self.not_tags)


@dataclass(frozen=True, slots=True)
class Rule:
    """One enabled rule of a stored configuration, compiled for matching."""

    rule_id: str
    priority: int
    destination: str  # the destination bucket's name
    selector: Selector
    delete_markers: bool
    sse_kms: bool  # SSE-KMS objects opted in (SourceSelectionCriteria)
    document: dict[str, Any]  # the rule as stored
    replica_modifications: bool = False  # metadata changes of replicas replicated (SourceSelectionCriteria)

    @property
    def tagged(self) -> bool:
        return bool(self.selector.tags or self.selector.not_tags)


@dataclass(frozen=True, slots=True)
class Configuration:
    role: str
    rules: tuple[Rule, ...]  # the enabled ones

    def targets(self, key: str, tags: dict[str, str] | None, *, delete_marker: bool = False,
                sse_kms: bool = False) -> list[Rule]:
        """The rule that governs each destination for this version (the highest priority among
        those that select it), without the destinations it is not replicated to."""
        chosen: dict[str, Rule] = {}
        for rule in self.rules:
            if not rule.selector.selects(key, None if delete_marker else tags):
                continue
            known = chosen.get(rule.destination)
            if known is None or rule.priority > known.priority:
                chosen[rule.destination] = rule
        found = list(chosen.values())
        if delete_marker:
            return [rule for rule in found if rule.delete_markers]
        if sse_kms:
            return [rule for rule in found if rule.sse_kms]
        return found

    def sync_targets(self, key: str, tags: dict[str, str], *, sse_kms: bool = False) -> list[Rule]:
        """For a metadata change of a version: the rule that governs each destination for it now,
        else the highest priority rule whose prefixes select its key (a tag change may have taken
        away the tags that selected it: its replica still gets the change)."""
        chosen = {rule.destination: rule for rule in self.targets(key, tags, sse_kms=sse_kms)}
        fallback: dict[str, Rule] = {}
        for rule in self.rules:
            if rule.destination in chosen or not rule.selector.selects_key(key) or (sse_kms and not rule.sse_kms):
                continue
            known = fallback.get(rule.destination)
            if known is None or rule.priority > known.priority:
                fallback[rule.destination] = rule
        return [*chosen.values(), *fallback.values()]


def destination_name(arn: str) -> str | None:
    """The bucket of a destination ``arn:aws:s3:::name`` (None when it is not one)."""
    if not arn.startswith(BUCKET_ARN_PREFIX):
        return None
    name = arn[len(BUCKET_ARN_PREFIX):]
    return name if name and "/" not in name and ":" not in name else None


def _pairs(tags: list[dict[str, Any]] | None) -> tuple[tuple[str, str], ...]:
    return tuple((str(t.get("Key", "")), str(t.get("Value", ""))) for t in tags or [])


def selector_of(rule: dict[str, Any]) -> Selector:
    if "Filter" not in rule:
        return Selector(str(rule.get("Prefix") or ""), ())
    flt = rule.get("Filter") or {}
    source = flt.get("And") or flt
    tags = _pairs(source.get("Tags"))
    if flt.get("Tag"):
        tags += _pairs([flt["Tag"]])
    exclude = source.get("Not") or flt.get("Not") or {}
    either = exclude.get("Or") or {}
    not_prefixes = tuple(str(p) for p in [exclude.get("Prefix"), *(either.get("Prefixes") or [])] if p)
    not_tags = _pairs([t for t in [exclude.get("Tag"), *(either.get("Tags") or [])] if t])
    return Selector(str(source.get("Prefix") or ""), tags, not_prefixes, not_tags)


def _enabled(item: Any) -> bool:
    return isinstance(item, dict) and item.get("Status") == "Enabled"


@functools.lru_cache(maxsize=256)
def compiled(text: str) -> Configuration:
    """A stored configuration, compiled once per distinct text (the write path asks on every write
    to a replicated bucket)."""
    document = json.loads(text)
    rules = []
    for rule in document.get("Rules") or []:
        if rule.get("Status") != "Enabled":
            continue
        v1 = "Filter" not in rule
        destination = destination_name(str((rule.get("Destination") or {}).get("Bucket") or ""))
        criteria = rule.get("SourceSelectionCriteria") or {}
        rules.append(Rule(
            str(rule.get("ID") or ""), int(rule.get("Priority") or 0), destination or "", selector_of(rule),
            v1 or _enabled(rule.get("DeleteMarkerReplication")), _enabled(criteria.get("SseKmsEncryptedObjects")),
            rule, _enabled(criteria.get("ReplicaModifications"))))
    return Configuration(str(document.get("Role") or ""), tuple(rules))


# -- the write path ----------------------------------------------------------------------------------

def is_kms(encryption: str | None) -> bool:
    return bool(encryption) and json.loads(str(encryption)).get("sse") == "aws:kms"


def mark_pending(bucket: Bucket, values: dict[str, Any]) -> bool:
    """For a new version about to be written to ``bucket`` (which has a replication
    configuration): set its ``replication_status`` to PENDING when a rule replicates it. Whether
    it did (the caller then wakes the replication controller once the write has committed)."""
    if not bucket.replication or values.get("version_id") == store.NULL_VERSION:
        return False
    if values.get("storage_class") in UNREPLICATED_CLASSES:
        return False
    config = compiled(bucket.replication)
    marker = bool(values.get("delete_marker"))
    tags = None if marker else dict(json.loads(values["tags"])) if values.get("tags") else {}
    if not config.targets(str(values["key"]), tags, delete_marker=marker, sse_kms=is_kms(values.get("encryption"))):
        return False
    values["replication_status"] = PENDING
    return True


def mark_delete_marker(conn: sa.Connection, bucket: Bucket, key: str, marker_version_id: str | None) -> bool:
    """After DeleteObject(s) put a delete marker (in the same transaction): PENDING when a rule
    replicates it. Lifecycle expiration never calls this: its delete markers are not replicated."""
    if not bucket.replication or not marker_version_id or marker_version_id == store.NULL_VERSION:
        return False
    values = {"bucket": bucket.name, "key": key, "version_id": marker_version_id, "delete_marker": True}
    if not mark_pending(bucket, values):
        return False
    c = s3_objects.c
    conn.execute(s3_objects.update().where(c.bucket == bucket.name, c.key == key, c.version_id == marker_version_id)
                 .values(replication_status=PENDING))
    return True


# -- validation --------------------------------------------------------------------------------------

def _malformed() -> MalformedXML:
    return MalformedXML()


def _check_status(item: Any, *, required: bool = True) -> None:
    """An element whose Status is Enabled or Disabled (or, unless ``required``, absent)."""
    if item is None or (isinstance(item, dict) and item.get("Status") in _STATUSES):
        return
    if required or not isinstance(item, dict) or item.get("Status") is not None:
        raise _malformed()


def _check_filter(flt: Any) -> None:
    """A Filter holds at most one of Prefix, Tag, And and Not (an empty one selects everything)."""
    if not isinstance(flt, dict):
        raise _malformed()
    given = [name for name in ("Prefix", "Tag", "And", "Not") if flt.get(name) is not None]
    if len(given) > 1:
        raise _malformed()
    for tag in [flt.get("Tag"), *((flt.get("And") or {}).get("Tags") or [])]:
        if tag is not None and not str(tag.get("Key") or ""):
            raise _malformed()


def _check_destination(rule: dict[str, Any]) -> str:
    """The destination bucket's name, the rest of Destination checked."""
    destination = rule.get("Destination")
    if not isinstance(destination, dict) or not destination.get("Bucket"):
        raise _malformed()
    storage_class = destination.get("StorageClass")
    if storage_class is not None and storage_class not in REPLICA_CLASSES:
        raise _malformed()
    name = destination_name(str(destination["Bucket"]))
    if name is None:
        raise InvalidArgument("Invalid bucket ARN.", ArgumentName="Bucket", ArgumentValue=str(destination["Bucket"]))
    translation = destination.get("AccessControlTranslation")
    if translation is not None:
        if (translation or {}).get("Owner") != "Destination":
            raise _malformed()
        if not destination.get("Account"):
            raise InvalidRequest("Destination Account must be specified when AccessControlTranslation is "
                                 "specified.")
    time, metrics = destination.get("ReplicationTime"), destination.get("Metrics")
    _check_status(time)
    _check_status(metrics)
    if time is not None and _enabled(time) != _enabled(metrics):
        raise InvalidRequest("Replication destination must contain both ReplicationTime and Metrics or neither.")
    for minutes in [((time or {}).get("Time") or {}).get("Minutes"),
                    ((metrics or {}).get("EventThreshold") or {}).get("Minutes")]:
        if minutes is not None and int(minutes) != 15:
            raise InvalidArgument("Invalid value for Minutes: the only value allowed is 15.", ArgumentName="Minutes",
                                  ArgumentValue=str(minutes))
    return name


def _check_encryption(rule: dict[str, Any]) -> None:
    criteria = rule.get("SourceSelectionCriteria")
    if criteria is not None:
        _check_status(criteria.get("SseKmsEncryptedObjects"))
        _check_status(criteria.get("ReplicaModifications"))
    kms_opt_in = _enabled((criteria or {}).get("SseKmsEncryptedObjects"))
    encryption = (rule.get("Destination") or {}).get("EncryptionConfiguration")
    replica_key = (encryption or {}).get("ReplicaKmsKeyID")
    if kms_opt_in and not replica_key:
        raise InvalidRequest("ReplicaKmsKeyID must be specified if SseKmsEncryptedObjects tag is present.")
    if replica_key and not kms_opt_in:
        raise InvalidRequest("SseKmsEncryptedObjects must be specified if EncryptionConfiguration is present.")
    if _enabled((encryption or {}).get("UseSourceMultiRegionKey")):
        raise NotImplementedFeature("Multi-Region KMS keys are not implemented by minicloud: name the replica "
                                    "key with ReplicaKmsKeyID.")


def _check_rule(rule: dict[str, Any], source: str) -> str:
    """One rule's shape; its destination bucket's name."""
    if not isinstance(rule, dict) or rule.get("Status") not in _STATUSES:
        raise _malformed()
    v2 = "Filter" in rule
    if v2 and rule.get("Prefix") is not None:
        raise _malformed()
    if len(str(rule.get("ID") or "")) > 255:
        raise InvalidArgument("ID length should not exceed allowed limit of 255", ArgumentName="ID",
                              ArgumentValue=str(rule.get("ID")))
    _check_status(rule.get("DeleteMarkerReplication"), required=False)
    _check_status(rule.get("ExistingObjectReplication"))
    if v2:
        _check_filter(rule["Filter"])
        if rule.get("DeleteMarkerReplication") is None:
            raise InvalidRequest("DeleteMarkerReplication must be specified for this version of Cross Region "
                                 "Replication configuration schema.")
        if _enabled(rule["DeleteMarkerReplication"]) and (selector_of(rule).tags or selector_of(rule).not_tags):
            raise InvalidRequest("Delete marker replication is not supported if any Tag filter is specified.")
    else:
        if rule.get("Priority") is not None:
            raise InvalidRequest("Priority cannot be used for this version of Cross Region Replication "
                                 "configuration schema.")
        if rule.get("DeleteMarkerReplication") is not None:
            raise InvalidRequest("DeleteMarkerReplication cannot be used for this version of Cross Region "
                                 "Replication configuration schema.")
    if _enabled(rule.get("ExistingObjectReplication")):
        raise NotImplementedFeature("Replication of existing objects (S3 Batch Replication) is not implemented "
                                    "by minicloud: new object versions are replicated.")
    _check_encryption(rule)
    name = _check_destination(rule)
    if name == source:
        raise InvalidRequest("Destination bucket cannot be the same as the source bucket.")
    return name


def check_configuration(config: dict[str, Any], source: str) -> list[str]:
    """Validate a ReplicationConfiguration as S3 does; the destination buckets' names."""
    rules = config.get("Rules")
    if not config.get("Role") or not isinstance(rules, list) or not rules or len(rules) > MAX_RULES:
        raise _malformed()
    destinations = [_check_rule(rule, source) for rule in rules]
    ids = [str(rule["ID"]) for rule in rules if rule.get("ID")]
    if len(ids) != len(set(ids)):
        raise InvalidArgument("Rule Id must be unique", ArgumentName="ID")
    versions = {"Filter" in rule for rule in rules}
    if len(versions) > 1:
        raise InvalidRequest("A replication configuration cannot mix rules of the earlier version (Prefix) with "
                             "rules of the current one (Filter).")
    if versions == {False} and len(set(destinations)) > 1:
        raise InvalidRequest("Rules of the earlier version of the replication configuration (Prefix) must all "
                             "replicate to the same destination bucket; use Filter for several.")
    priorities = [int(rule.get("Priority") or 0) for rule in rules if "Filter" in rule]
    if len(priorities) != len(set(priorities)):
        raise InvalidRequest("Priority must be unique: two rules of the replication configuration have the same "
                             "Priority.")
    return list(dict.fromkeys(destinations))


def stored_configuration(config: dict[str, Any]) -> str:
    """The configuration as stored and answered: rule IDs made up where missing (as S3 does),
    a V2 rule's Priority 0 when none was given."""
    rules = []
    for rule in config["Rules"]:
        rule = dict(rule)
        if not rule.get("ID"):
            rule["ID"] = base64.b64encode(str(uuid.uuid4()).encode()).decode().rstrip("=")
        if "Filter" in rule:
            rule.setdefault("Priority", 0)
        rules.append(rule)
    return json.dumps({"Role": str(config["Role"]), "Rules": rules}, default=str)


class ReplicationOperations(EncryptionOperations):
    def __init__(self, runtime: Runtime) -> None:
        from minicloud.services.s3.replicator import ReplicationController

        super().__init__(runtime)  # (the replicator builds on this module: imported here, not above)
        self.replicator = ReplicationController(self.db, self.data, runtime.authorizer, self._kms)
        runtime.controllers.append(self.replicator)

    def replication_pending(self) -> None:
        self.replicator.wake()

    async def put_bucket_replication(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = await self.bucket_for(ctx, params, "PutReplicationConfiguration")
        config = dict(params.get("ReplicationConfiguration") or {})
        destinations = check_configuration(config, bucket.name)
        if bucket.versioning != "Enabled":
            raise InvalidRequest("Versioning must be 'Enabled' on the bucket to apply a replication configuration",
                                 BucketName=bucket.name)
        for name in destinations:
            found = await self.find_bucket(name)
            if found is None:
                raise InvalidRequest("Destination bucket must exist.", BucketName=bucket.name)
            if found.versioning != "Enabled":
                raise InvalidRequest("Destination bucket must have versioning enabled.", BucketName=bucket.name)
        # S3 replicates as the role: handing it over needs iam:PassRole, as for any service
        await ctx.authorize("iam:PassRole", str(config["Role"]), context={"iam:PassedToService": S3_SERVICE})
        text = stored_configuration(config)
        await self.db.write(lambda conn: store.update_bucket(conn, bucket.name, replication=text))
        self.forget_bucket(bucket.name)
        return {}

    async def get_bucket_replication(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = await self.bucket_for(ctx, params, "GetReplicationConfiguration")
        if not bucket.replication:
            raise ReplicationConfigurationNotFoundError("The replication configuration was not found",
                                                        BucketName=bucket.name)
        return {"ReplicationConfiguration": json.loads(bucket.replication)}

    async def delete_bucket_replication(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = await self.bucket_for(ctx, params, "PutReplicationConfiguration")  # (S3's action for both)
        await self.db.write(lambda conn: store.update_bucket(conn, bucket.name, replication=None))
        self.forget_bucket(bucket.name)
        return {}
