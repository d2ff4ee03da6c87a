"""Datasets addressed by content: the same rows and types give the same hash, whatever the file."""

from __future__ import annotations

import hashlib
import io

import pandas as pd

from mlship.store.artifacts import ArtifactRef, ArtifactStore


def frame_hash(frame: pd.DataFrame) -> str:
    """sha256 over column names, dtypes and values (row order matters, file encoding does not)."""
    digest = hashlib.sha256()
    for name in frame.columns:
        column = frame[name]
        digest.update(f"{name}\0{column.dtype}\0".encode())
        digest.update(pd.util.hash_pandas_object(column, index=False).to_numpy().tobytes())
    digest.update(str(len(frame)).encode())
    return digest.hexdigest()


def store_frame(frame: pd.DataFrame, store: ArtifactStore) -> ArtifactRef:
    """Write ``frame`` as Parquet into the artifact store."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return store.put_bytes(buffer.getvalue())


def load_frame(sha256: str, store: ArtifactStore) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(store.get_bytes(sha256)))
