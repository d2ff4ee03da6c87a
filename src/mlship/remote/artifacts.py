"""The artifact store of a tracking server, used like the local one."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from mlship.errors import IntegrityError
from mlship.remote.client import Client
from mlship.store.artifacts import ArtifactRef, ArtifactStore

_CHUNK = 1024 * 1024


class RemoteArtifactStore(ArtifactStore):
    """Uploads are spooled to a temporary file to learn their address, then sent once (an
    artifact the server already has is not sent again; a retry sends the file again from its
    start, to the same address, where the server stores the same bytes whole or not at all);
    downloads are checked against their address before anyone uses them."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def put_chunks(self, chunks: Iterable[bytes]) -> ArtifactRef:
        fd, name = tempfile.mkstemp(prefix="mlship-upload-")
        spool = Path(name)
        try:
            digest, size = hashlib.sha256(), 0
            with os.fdopen(fd, "wb") as handle:
                for chunk in chunks:
                    digest.update(chunk)
                    size += len(chunk)
                    handle.write(chunk)
            sha256 = digest.hexdigest()
            if not self.exists(sha256):
                self.client.put_stream(f"/artifacts/{sha256}", lambda: _read(spool))
            return ArtifactRef(sha256=sha256, size=size)
        finally:
            spool.unlink(missing_ok=True)

    def get_bytes(self, sha256: str) -> bytes:
        data = self.client.get_bytes(f"/artifacts/{sha256}")
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise IntegrityError(
                f"artifact {sha256} from {self.client.url} hashes to {actual}; refusing to use it"
            )
        return data

    def exists(self, sha256: str) -> bool:
        return bool(self.client.get(f"/artifacts/{sha256}/exists")["exists"])


def _read(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            yield chunk
