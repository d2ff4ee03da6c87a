"""Which backups a destination keeps: listing them, and pruning by count and by day.

``prune`` keeps the newest ``keep_last`` complete backups and, with ``keep_daily``, the newest
backup of each of the ``keep_daily`` most recent days that have one (UTC days, from the
backups' names); it deletes every other complete backup, then every object no kept backup's
manifest lists. Incomplete backups (no manifest: interrupted) are deleted too when the place is
locked while pruning (a local directory: no backup can be under way); in object storage, which
has no lock, one newer than every complete backup may still be being written, so it is kept,
and then no object is deleted, since that backup's manifest does not exist yet to say which it
needs. A backup whose manifest is there but does not read is never deleted, and neither is
any object while it is there: what it needs is unknown.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlship.backup.manifest import FILE, Manifest
from mlship.backup.place import BackupPlace, LocalPlace
from mlship.errors import ConfigError, MlshipError


@dataclass(frozen=True)
class Listed:
    """One backup in a destination. ``manifest`` is None for an incomplete one, and
    ``problem`` says why a manifest that is there cannot be read."""

    name: str
    manifest: Manifest | None
    problem: str = ""

    @property
    def complete(self) -> bool:
        return self.manifest is not None


@dataclass(frozen=True)
class Pruned:
    kept: tuple[str, ...]
    removed: tuple[str, ...]
    objects_removed: int
    objects_kept: int
    swept: bool
    leftovers: int = 0


def listing(place: BackupPlace) -> list[Listed]:
    """Every backup in ``place``, oldest first."""
    found = []
    for name in place.backups():
        if not place.has(name, FILE):
            found.append(Listed(name, None))
            continue
        try:
            manifest = Manifest.from_json(place.read(name, FILE), place.location(name, FILE))
        except MlshipError as exc:
            found.append(Listed(name, None, str(exc)))
            continue
        found.append(Listed(name, manifest))
    return found


def chosen(names: list[str], keep_last: int, keep_daily: int) -> set[str]:
    """The complete backups ``names`` (any order) that a prune keeps.

    >>> sorted(chosen(["20260101T010000Z", "20260101T020000Z", "20260102T010000Z"], 1, 2))
    ['20260101T020000Z', '20260102T010000Z']
    """
    newest_first = sorted(names, reverse=True)
    kept = set(newest_first[:keep_last])
    days: dict[str, str] = {}
    for name in newest_first:
        days.setdefault(name[:8], name)  # the first seen of a day is its newest
    kept.update(list(days.values())[:keep_daily])
    return kept


def prune(place: BackupPlace, keep_last: int, keep_daily: int = 0) -> Pruned:
    """Delete the backups and objects the policy does not keep (see the module docstring)."""
    if keep_last < 1:
        raise ConfigError("--keep-last must be at least 1: a prune never deletes every backup")
    if keep_daily < 0:
        raise ConfigError("--keep-daily must be 0 or more")
    exclusive = isinstance(place, LocalPlace)
    with place.locked():
        leftovers = place.tidy() if exclusive else 0
        found = listing(place)
        complete = [item.name for item in found if item.complete]
        kept = chosen(complete, keep_last, keep_daily)
        newest = max(complete, default="")
        in_flight = {  # maybe still being written, or a manifest to look at by hand
            item.name
            for item in found
            if item.problem or (not item.complete and not exclusive and item.name > newest)
        }
        removed = [item.name for item in found if item.name not in kept | in_flight]
        for name in removed:
            place.remove(name)
        needed: set[str] = set()
        for item in found:
            if item.name in kept and item.manifest is not None:
                needed |= item.manifest.addresses
        area = place.objects(None, encrypt=False)
        gone = left = 0
        if not in_flight:
            for sha256 in list(area.addresses()):
                if sha256 in needed:
                    left += 1
                else:
                    area.delete(sha256)
                    gone += 1
    return Pruned(tuple(sorted(kept)), tuple(removed), gone, left, not in_flight, leftovers)
