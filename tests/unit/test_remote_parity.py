"""The remote repositories replace every method of the local ones: a method left to the base
class would reach for a database connection that a client of a server does not have. (The
tracking repositories are not subclasses: tests/unit/test_metadata_contract.py runs one
behavioural suite on both.)"""

from __future__ import annotations

import inspect

import pytest

from mlship.monitor.history import AlertHistory
from mlship.registry.lifecycle import Registry
from mlship.remote.admin import RemoteAlertHistory, RemoteAuditLog, RemoteUsers
from mlship.remote.artifacts import RemoteArtifactStore
from mlship.remote.registry import RemoteRegistry
from mlship.security.users import Users
from mlship.store.artifacts import ArtifactStore
from mlship.store.audit_log import AuditLog


def _public(cls: type) -> set[str]:
    return {n for n, v in vars(cls).items() if callable(v) and not n.startswith("_")}


@pytest.mark.parametrize(
    ("local", "remote"),
    [
        (Registry, RemoteRegistry),
        (Users, RemoteUsers),
        (AuditLog, RemoteAuditLog),
        (AlertHistory, RemoteAlertHistory),
        (ArtifactStore, RemoteArtifactStore),
    ],
)
def test_every_public_method_is_overridden_with_the_same_signature(
    local: type, remote: type
) -> None:
    expected = _public(local) - ({"put_bytes", "put_file"} if local is ArtifactStore else set())
    missing = expected - _public(remote)
    assert not missing, f"{remote.__name__} leaves {sorted(missing)} to {local.__name__}"
    for name in expected:
        ours = inspect.signature(getattr(remote, name))
        theirs = inspect.signature(getattr(local, name))
        assert list(ours.parameters) == list(theirs.parameters), name
