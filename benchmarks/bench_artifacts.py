"""Artifact store throughput: what checksums, signatures and encryption cost, against MLflow.

Stores and reads back the same files through MLflow's local artifact repository (a plain file
copy in, a plain file copy out: no checksum, no signature, no encryption) and through mlship's
local store in three configurations:

* ``signed``: the default (content address by sha256, a signature per artifact, the checksum
  and the signature checked on every read);
* ``signed + encrypted``: the same with ``encrypt_artifacts`` on (AES-256-GCM, 1 MiB segments);
* ``unsigned``: the store without a signer, to show what the signature alone costs.

Two workloads: one large file (a dataset version, ``--large-mb``) and many small ones (profiles
and reports, ``--small`` files of ``--small-kb``). Reads are cold only in the sense that nothing
is cached by mlship; the operating system's page cache serves every tool alike. mlship syncs each
file and its directory before a write returns (a crash keeps an artifact whole or not at all) and
signs in a second synced file; MLflow's copy syncs nothing, which is most of the gap on writes of
small files. Each cell is the best of ``--repeat`` rounds (a round runs every tool once, in
turn); the MLflow ratio columns are MLflow's time over mlship's (above 1: mlship faster).

The S3 section runs the same workloads against S3-compatible object storage: a SeaweedFS server
(``weed`` from the dev extras) started on 127.0.0.1 for the run, reached by MLflow's
``S3ArtifactRepository`` (boto3's ``upload_file`` and ``download_file``: no checksum of its own)
and by mlship's object store, signed and signed + encrypted (the address hashed before the upload,
the checksum and signature checked on every read). Both use boto3 with their own transfer
settings; the server, the disk and the loopback network are shared alike.

    python benchmarks/bench_artifacts.py [--large-mb 256] [--small 500] [--small-kb 64] [--repeat 3]
        [--sections local s3]
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from mlship import __version__
from mlship.crypto.encryption import ArtifactCipher, Keyring, new_key
from mlship.security.signing import Signer
from mlship.store.artifacts import ArtifactStore, LocalArtifactStore
from mlship.store.s3 import S3ArtifactStore, S3Location, S3Settings, make_client

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test suite's SeaweedFS helper


@dataclass(frozen=True)
class Timing:
    write: float
    read: float


def _best_of_rounds(repeat: int, runs: dict[str, Callable[[Path], Timing]], root: Path,
                    console: Console, workload: str) -> dict[str, Timing]:  # fmt: skip
    """The best write and the best read of each tool over ``repeat`` rounds, each into a fresh
    directory. A round runs every tool once, in turn, so that other work on a shared machine
    weighs on all of them alike rather than on whichever tool ran while it lasted."""
    timings: dict[str, list[Timing]] = {tool: [] for tool in runs}
    for attempt in range(repeat):
        for tool, run in runs.items():
            console.log(f"{workload}: {tool} (round {attempt + 1} of {repeat})")
            where = root / f"run-{attempt}"
            timings[tool].append(run(where))
            shutil.rmtree(where)
    return {
        tool: Timing(min(t.write for t in done), min(t.read for t in done))
        for tool, done in timings.items()
    }


def _same(files: list[Path], read: list[bytes], tool: str) -> None:
    """Stop the benchmark when a tool read back other bytes than it was given (after timing)."""
    for path, data in zip(files, read, strict=True):
        if data != path.read_bytes():
            raise SystemExit(f"{tool} read back other bytes than {path.name} holds")


def _through_store(store: ArtifactStore, files: list[Path]) -> Timing:
    """Write ``files`` to an mlship artifact store, then read every one back."""
    started = time.perf_counter()
    refs = [store.put_file(path) for path in files]
    written = time.perf_counter()
    read = [store.get_bytes(ref.sha256) for ref in refs]
    timing = Timing(written - started, time.perf_counter() - written)
    _same(files, read, "mlship")
    return timing


def _through_mlflow(repository: Any, files: list[Path], where: Path) -> Timing:
    """Log ``files`` to an MLflow artifact repository, then download and read every one."""
    started = time.perf_counter()
    for path in files:
        repository.log_artifact(str(path))
    written = time.perf_counter()
    out = where / "out"
    out.mkdir(parents=True)
    read = [
        Path(repository.download_artifacts(path.name, dst_path=str(out))).read_bytes()
        for path in files
    ]  # the bytes handed to the caller, as mlship's read does
    timing = Timing(written - started, time.perf_counter() - written)
    _same(files, read, "MLflow")
    return timing


def _mlflow(files: list[Path]) -> Callable[[Path], Timing]:
    from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

    def run(where: Path) -> Timing:
        return _through_mlflow(LocalArtifactRepository(str(where / "artifacts")), files, where)

    return run


def _mlship(files: list[Path], signer: Signer | None, encrypt: bool) -> Callable[[Path], Timing]:
    def run(where: Path) -> Timing:
        cipher = ArtifactCipher(Keyring(new_key())) if encrypt else None
        return _through_store(LocalArtifactStore(where / "artifacts", cipher, signer=signer), files)

    return run


def _mlflow_s3(bucket: str) -> Callable[[list[Path]], Callable[[Path], Timing]]:
    """MLflow's S3 repository on ``bucket`` (endpoint and keys from the environment)."""

    def make(files: list[Path]) -> Callable[[Path], Timing]:
        from mlflow.store.artifact.s3_artifact_repo import S3ArtifactRepository

        def run(where: Path) -> Timing:
            uri = f"s3://{bucket}/mlflow-{secrets.token_hex(6)}"
            return _through_mlflow(S3ArtifactRepository(uri), files, where)

        return run

    return make


def _mlship_s3(
    bucket: str, settings: S3Settings, signer: Signer, encrypt: bool
) -> Callable[[list[Path]], Callable[[Path], Timing]]:
    def make(files: list[Path]) -> Callable[[Path], Timing]:
        def run(where: Path) -> Timing:
            where.mkdir(parents=True)
            cipher = ArtifactCipher(Keyring(new_key())) if encrypt else None
            location = S3Location(bucket, f"mlship-{secrets.token_hex(6)}")
            store = S3ArtifactStore(location, make_client(settings), cipher, signer=signer)
            return _through_store(store, files)

        return run

    return make


def _files(directory: Path, count: int, size: int, stem: str) -> list[Path]:
    directory.mkdir(parents=True)
    paths = []
    for number in range(count):
        path = directory / f"{stem}-{number:05d}.bin"
        path.write_bytes(os.urandom(size))
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--large-mb", type=int, default=256)
    parser.add_argument("--small", type=int, default=500)
    parser.add_argument("--small-kb", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sections", nargs="+", choices=["local", "s3"], default=["local", "s3"])
    args = parser.parse_args()
    console = Console(width=160)
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    import mlflow

    signer = Signer(hmac_key=new_key())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        workloads = {
            f"1 file × {args.large_mb} MiB": _files(
                root / "large", 1, args.large_mb << 20, "dataset"
            ),
            f"{args.small} files × {args.small_kb} KiB": _files(
                root / "small", args.small, args.small_kb << 10, "report"
            ),
        }
        if "local" in args.sections:
            tools: dict[str, Callable[[list[Path]], Callable[[Path], Timing]]] = {
                f"MLflow LocalArtifactRepository {mlflow.__version__}": _mlflow,
                f"mlship {__version__} signed": lambda f: _mlship(f, signer, encrypt=False),
                f"mlship {__version__} signed + encrypted": lambda f: _mlship(
                    f, signer, encrypt=True
                ),
                f"mlship {__version__} unsigned": lambda f: _mlship(f, None, encrypt=False),
            }
            title = "Artifact store on local disk: store then read back (best of runs)"
            console.print(_compare(console, title, workloads, tools, args.repeat, root))
        if "s3" in args.sections:
            from tests.objectstore import seaweedfs_server

            with seaweedfs_server() as store:
                os.environ.update(store.env())
                os.environ["MLFLOW_S3_ENDPOINT_URL"] = store.endpoint
                settings = store.settings()
                tools = {
                    f"MLflow S3ArtifactRepository {mlflow.__version__}": _mlflow_s3(store.bucket),
                    f"mlship {__version__} S3 signed": _mlship_s3(
                        store.bucket, settings, signer, encrypt=False
                    ),
                    f"mlship {__version__} S3 signed + encrypted": _mlship_s3(
                        store.bucket, settings, signer, encrypt=True
                    ),
                }
                title = "Artifact store on S3 (SeaweedFS, loopback): store then read back"
                console.print(_compare(console, title, workloads, tools, args.repeat, root))


def _compare(
    console: Console,
    title: str,
    workloads: dict[str, list[Path]],
    tools: dict[str, Callable[[list[Path]], Callable[[Path], Timing]]],
    repeat: int,
    root: Path,
) -> Table:
    """Time every tool on every workload; ratios against the first tool (MLflow's)."""
    table = Table(title=f"{title} (best of {repeat})")
    for name in ("workload", "tool", "write s", "read s", "MiB/s write", "MiB/s read",
                 "× MLflow write", "× MLflow read"):  # fmt: skip
        table.add_column(name, justify="left" if name in ("workload", "tool") else "right")
    for workload, files in workloads.items():
        mib = sum(path.stat().st_size for path in files) / (1 << 20)
        best = _best_of_rounds(
            repeat,
            {tool: make(files) for tool, make in tools.items()},
            root / "runs",
            console,
            workload,
        )
        baseline: Timing | None = None
        for tool, timing in best.items():
            baseline = baseline or timing
            table.add_row(
                workload,
                tool,
                f"{timing.write:.3f}",
                f"{timing.read:.3f}",
                f"{mib / timing.write:,.0f}",
                f"{mib / timing.read:,.0f}",
                f"{baseline.write / timing.write:.2f}×",
                f"{baseline.read / timing.read:.2f}×",
            )
    return table


if __name__ == "__main__":
    main()
