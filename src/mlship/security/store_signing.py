"""Signing the artifacts a workspace stored before its store signed what it wrote.

The store refuses an artifact without a valid signature, so a workspace that holds older files
signs them once with :func:`sign_all` (``mlship keys sign-all``). Each file's bytes are checked
against its address before its address is signed, and a signature that is there but does not
verify is reported, never replaced: signing must not launder a file someone slipped in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mlship.errors import MlshipError
from mlship.security.progress import RotationObserver

if TYPE_CHECKING:
    from mlship.store.artifacts import MaintainedStore


@dataclass
class Signed:
    """What a signing walk did."""

    signed: int = 0
    already: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)


def sign_all(store: MaintainedStore, observer: RotationObserver | None = None) -> Signed:
    """Sign every stored artifact that has no signature yet, after checking its checksum."""
    observer = observer or RotationObserver()
    done = Signed()
    addresses = list(store.addresses())
    observer.started(len(addresses), "the workspace's signing key")
    for sha256 in addresses:
        signed = False
        try:
            signed = store.sign_existing(sha256)
        except MlshipError as exc:
            done.failed.append((sha256, str(exc)))
        else:
            if signed:
                done.signed += 1
            else:
                done.already += 1
        observer.advanced(sha256, signed)
    return done


def unsigned_count(store: MaintainedStore) -> tuple[int, int]:
    """How many stored artifacts have no signature, and how many are stored in all."""
    addresses = list(store.addresses())
    signed = store.signed_addresses()
    return sum(a not in signed for a in addresses), len(addresses)
