"""Which log store a workspace without a server writes its prediction logs and labels to.

Apart from :mod:`mlship.store.logstore` because it picks among the implementations (the S3 one
imports the protocol module), so the protocol module imports none of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlship.store.logstore import LocalLogStore, LogStore

if TYPE_CHECKING:
    from mlship.config import Settings


def log_store_for(settings: Settings) -> LogStore:
    """The artifacts' object storage when they are in one, else ``home`` (``predictions/``,
    ``feedback/``). A server of a bundle, which has no workspace open, and key maintenance use
    it too."""
    if settings.artifact_url is not None:
        from mlship.store.s3 import S3Location, client_from_settings
        from mlship.store.s3logs import S3LogStore

        location = S3Location.parse(settings.artifact_url)
        return S3LogStore(location, client_from_settings(settings, location))
    return LocalLogStore(settings.home_resolved)
