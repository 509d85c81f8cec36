"""Scrubbing: read every replica's copy of every blob, check it against its digest, and repair
what is wrong from a copy that is right.

- Copies in either tier of a replica are checked: files and rows of its small-blob pack.
- A corrupt copy (its bytes do not hash to its name) is set aside (a file renamed
  ``<hex>.corrupt``, a packed row removed) and replaced by a verified copy from another replica.
- A missing copy is restored on every healthy replica when the caller says the blob belongs in
  every zone (``full_copy``); a blob kept in one zone on purpose is only verified.
- A blob with no verified copy anywhere is reported as unrecoverable (and left as it is).

Blocking: run it on a worker thread. Callers decide how often (a controller).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from minicloud.storage.blobs.core import BlobNotFound, Digest
from minicloud.storage.blobs.replica import Replica

log = logging.getLogger("minicloud.storage.repair")

_CHUNK = 1 << 20


@dataclass(slots=True)
class ScrubReport:
    checked: int = 0
    corrupt_repaired: int = 0
    missing_repaired: int = 0
    unrecoverable: list[str] = field(default_factory=list)

    def add(self, other: ScrubReport) -> None:
        self.checked += other.checked
        self.corrupt_repaired += other.corrupt_repaired
        self.missing_repaired += other.missing_repaired
        self.unrecoverable += other.unrecoverable


def copy_is_good(replica: Replica, digest: Digest) -> bool | None:
    """Whether the replica's copy hashes to the digest: False when it does not or cannot be read,
    None when there is no copy (or it was deleted meanwhile)."""
    hasher = hashlib.new(digest.algorithm)
    try:
        packed = replica.packed(digest)
        if packed is not None:
            return hashlib.new(digest.algorithm, packed).hexdigest() == digest.hex
        with replica.open_file(digest) as f:
            while chunk := f.read(_CHUNK):
                hasher.update(chunk)
    except BlobNotFound:
        return None
    except OSError:
        return False
    return hasher.hexdigest() == digest.hex


class Scrubber:
    def __init__(self, replicas: Sequence[Replica]) -> None:
        self.replicas = list(replicas)

    def reclaim(self) -> int:
        """Give the pages of removed packed rows back to the file system: the pages given back."""
        given = 0
        for replica in self.replicas:
            if replica.pack is not None and replica.healthy():
                try:
                    given += replica.pack.reclaim()
                except OSError as exc:
                    log.warning("reclaiming space on %s failed: %s", replica.name, exc)
        return given

    def digests(self) -> list[Digest]:
        """Every blob any healthy replica holds, in a stable order."""
        found: dict[str, Digest] = {}
        for replica in self.replicas:
            if replica.healthy():
                for info in replica.walk():
                    found.setdefault(str(info.digest), info.digest)
        return [found[name] for name in sorted(found)]

    def scrub(self, digests: Iterable[Digest], full_copy: Callable[[Digest], bool]) -> ScrubReport:
        report = ScrubReport()
        for digest in digests:
            report.add(self.scrub_blob(digest, everywhere=full_copy(digest)))
        return report

    def scrub_blob(self, digest: Digest, *, everywhere: bool) -> ScrubReport:
        report = ScrubReport(checked=1)
        healthy = [r for r in self.replicas if r.healthy()]
        verdicts = {r.name: copy_is_good(r, digest) for r in healthy}
        good = [r for r in healthy if verdicts[r.name] is True]
        bad = [r for r in healthy if verdicts[r.name] is False]
        missing = [r for r in healthy if verdicts[r.name] is None] if everywhere else []
        if not good:
            if bad:
                log.error("blob %s has no intact copy on any replica", digest)
                report.unrecoverable.append(str(digest))
            return report
        source = good[0]
        for replica in bad:
            log.error("replica %s holds a corrupt copy of %s: repairing it from %s", replica.name, digest,
                      source.name)
            replica.quarantine(digest)
            if self._restore(replica, source, digest):
                report.corrupt_repaired += 1
        for replica in missing:
            log.warning("replica %s lacks %s: copying it from %s", replica.name, digest, source.name)
            if self._restore(replica, source, digest):
                report.missing_repaired += 1
        return report

    @staticmethod
    def _restore(replica: Replica, source: Replica, digest: Digest) -> bool:
        try:
            replica.copy_from(source, digest)
        except (OSError, BlobNotFound) as exc:
            log.error("repairing %s on %s failed: %s", digest, replica.name, exc)
            return False
        return copy_is_good(replica, digest) is True
