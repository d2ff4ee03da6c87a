"""An ``s3://`` artifact root: parsed into bucket and prefix or refused with the rule it broke,
never mistaken for a directory, and turned by the workspace into the object store."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlship.config import Settings
from mlship.errors import ConfigError
from mlship.store.s3 import S3ArtifactStore, S3Location
from mlship.workspace import Workspace


@pytest.mark.parametrize(
    ("url", "bucket", "prefix"),
    [
        ("s3://models", "models", ""),
        ("s3://models/", "models", ""),
        ("s3://models/team-a", "models", "team-a"),
        ("s3://models/team-a/runs/", "models", "team-a/runs"),
    ],
)
def test_a_root_is_a_bucket_and_a_prefix(url: str, bucket: str, prefix: str) -> None:
    location = S3Location.parse(url)
    assert (location.bucket, location.prefix) == (bucket, prefix)
    assert location.key("objects/ab/cd") == "/".join(p for p in (prefix, "objects/ab/cd") if p)


@pytest.mark.parametrize("url", ["s3://", "s3:///prefix", "s3://ab/p", "s3://Bad_Name/p"])
def test_a_root_without_a_bucket_name_is_refused_naming_it(url: str) -> None:
    with pytest.raises(ConfigError, match="bucket name"):
        S3Location.parse(url)


@settings(derandomize=True, max_examples=200, deadline=None)
@given(text=st.text(max_size=80) | st.from_regex(r"[a-z0-9.-]{1,70}(/[a-zA-Z0-9/._-]{0,20})?"))
def test_any_text_parses_or_is_refused_with_a_config_error(text: str) -> None:
    bucket = text.partition("/")[0]
    allowed = set(string.ascii_lowercase + string.digits + ".-")
    valid = (
        3 <= len(bucket) <= 63
        and set(bucket) <= allowed
        and bucket[0] not in ".-"
        and bucket[-1] not in ".-"
    )
    if not valid:
        with pytest.raises(ConfigError, match="not a bucket name"):
            S3Location.parse("s3://" + text)
        return
    location = S3Location.parse("s3://" + text)
    assert location.bucket == bucket
    assert not location.prefix.startswith("/") and not location.prefix.endswith("/")


def test_an_s3_root_is_never_taken_for_a_directory(tmp_path: Path) -> None:
    found = Settings(home=tmp_path, artifact_root="s3://models/team-a")
    assert found.artifact_url == "s3://models/team-a"
    with pytest.raises(ConfigError, match="local artifact store only"):
        _ = found.artifact_root_resolved
    local = Settings(home=tmp_path, artifact_root=str(tmp_path / "store"))
    assert local.artifact_url is None
    assert local.artifact_root_resolved == tmp_path / "store"


def test_the_workspace_opens_the_object_store_for_an_s3_root(tmp_path: Path) -> None:
    workspace = Workspace.open(
        Settings(
            home=tmp_path,
            artifact_root="s3://models/team-a",
            s3_endpoint_url="http://127.0.0.1:9",
            s3_access_key_id="key",
            s3_secret_access_key="secret",
            user="tester",
        )
    )
    try:
        store = workspace.artifacts
        assert isinstance(store, S3ArtifactStore)
        assert str(store.location) == "s3://models/team-a"
        assert store.object_key("ab" + "0" * 62) == "team-a/objects/ab/" + "0" * 62
    finally:
        workspace.close()
