"""The logs' parts in S3-compatible object storage, beside the artifacts.

A part is the object ``<prefix>/<log>/part-....parquet`` under the artifact root
(``MLSHIP_ARTIFACT_ROOT=s3://bucket/prefix``), so every replica that shares the artifacts shares
the logs. A part is a flush of the log (about a thousand rows), always uploaded in one PUT: S3
shows an object whole or not at all, so a reader never sees half a part. The client is the
artifact store's (``store/s3.py``: standard-mode retries of throttling, 5xx and dropped
connections), and what is left of a failure becomes a StorageError or ConfigError naming the
bucket, the key and what to do. A listing starts after the first name ``since`` allows (names
begin with the time, zero-padded), so reading a recent window does not page through old parts.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING

from mlship.errors import MlshipError, NotFoundError
from mlship.store.logstore import (
    LogStore,
    PartRef,
    check_log,
    check_part,
    written_since,
)
from mlship.store.s3 import S3Location, guarded

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_DELETE_BATCH = 1000
"""The most keys one DeleteObjects request takes."""


class S3LogStore(LogStore):
    """Parts as objects under ``location`` (see the module docstring)."""

    def __init__(self, location: S3Location, client: S3Client) -> None:
        self.root = location
        self.client = client

    @property
    def where(self) -> str:
        return str(self.root)

    def _prefix(self, log: str) -> str:
        return self.root.key(f"{check_log(log)}/")

    def _key(self, part: PartRef) -> str:
        return self._prefix(part.log) + check_part(part.name)

    def put(self, log: str, name: str, data: bytes) -> None:
        key = self._key(PartRef(log, name))
        with self._guard(key, "writing"):
            self.client.put_object(Bucket=self.root.bucket, Key=key, Body=data)

    def parts(self, log: str, since: datetime | None = None) -> list[PartRef]:
        prefix = self._prefix(log)
        start = ""
        if since is not None:
            start = f"{prefix}part-{int(since.timestamp() * 1e9) - 1:019d}"
        found = []
        paginator = self.client.get_paginator("list_objects_v2")
        with self._guard(prefix, "listing"):
            pages = paginator.paginate(
                Bucket=self.root.bucket, Prefix=prefix, Delimiter="/", StartAfter=start
            )
            for page in pages:
                for entry in page.get("Contents", []):
                    name = entry["Key"][len(prefix) :]
                    if name.startswith("part-") and written_since(name, since):
                        try:
                            found.append(PartRef(log, check_part(name)))
                        except ValueError:
                            continue  # not one of ours
        return sorted(found)

    def sizes(self, log: str) -> dict[str, int] | None:
        """The sizes the listing gives, without reading a part."""
        prefix = self._prefix(log)
        found: dict[str, int] = {}
        paginator = self.client.get_paginator("list_objects_v2")
        with self._guard(prefix, "listing"):
            for page in paginator.paginate(Bucket=self.root.bucket, Prefix=prefix, Delimiter="/"):
                for entry in page.get("Contents", []):
                    name = entry["Key"][len(prefix) :]
                    try:
                        found[check_part(name)] = int(entry.get("Size", 0))
                    except ValueError:
                        continue  # not one of ours
        return found

    def logs(self, under: str) -> list[str]:
        prefix = self._prefix(under)
        found = []
        paginator = self.client.get_paginator("list_objects_v2")
        with self._guard(prefix, "listing"):
            for page in paginator.paginate(Bucket=self.root.bucket, Prefix=prefix, Delimiter="/"):
                for entry in page.get("CommonPrefixes", []):
                    name = entry.get("Prefix", "")[len(prefix) :].rstrip("/")
                    try:
                        found.append(check_log(f"{under}/{name}"))
                    except ValueError:
                        continue
        return sorted(found)

    def read(self, part: PartRef) -> bytes:
        key = self._key(part)
        with self._guard(key, "reading"):
            try:
                response = self.client.get_object(Bucket=self.root.bucket, Key=key)
            except Exception as exc:
                if _missing(exc):
                    raise NotFoundError(
                        f"log part s3://{self.root.bucket}/{key} is gone (compacted "
                        "meanwhile?); read the log again"
                    ) from None
                raise
            body: bytes = response["Body"].read()
            return body

    def delete(self, parts: Sequence[PartRef]) -> None:
        keys = [self._key(part) for part in parts]
        for start in range(0, len(keys), _DELETE_BATCH):
            batch = keys[start : start + _DELETE_BATCH]
            with self._guard(batch[0], "deleting"):
                answer = self.client.delete_objects(
                    Bucket=self.root.bucket,
                    Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True},
                )
            errors = answer.get("Errors", [])
            if errors:
                first = errors[0]
                raise MlshipError(
                    f"the log store {self.root} did not delete {len(errors)} part(s), "
                    f"s3://{self.root.bucket}/{first.get('Key')} first: "
                    f"{first.get('Code')} {first.get('Message')}; run the compaction again"
                )

    def _guard(self, key: str, doing: str) -> AbstractContextManager[None]:
        return guarded(self.root, key, doing)


def _missing(exc: BaseException) -> bool:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return False
    return str(response.get("Error", {}).get("Code", "")) in ("404", "NoSuchKey", "NotFound")
