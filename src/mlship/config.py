"""Settings: one typed object read from ``MLSHIP_*`` environment variables and ``mlship.toml``.

Environment variables win over the file, so a CI job or a container can override a checked-in
``mlship.toml`` without editing it. Every path is resolved against the current directory once,
here, so the rest of the code never guesses where the workspace lives.
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Literal

from pydantic import ByteSize, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from mlship.budget_settings import Budget, repeated
from mlship.dburl import sqlalchemy_url
from mlship.errors import ConfigError
from mlship.price_catalog import CatalogSettings
from mlship.prices import Prices
from mlship.retention import GcSettings
from mlship.yamlfile import field_name

CONFIG_FILE = "mlship.toml"


def _default_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, e.g. an arbitrary container uid
        return "unknown"


class Settings(BaseSettings):
    """Where mlship keeps its metadata and artifacts, and who is acting.

    >>> Settings(home=Path("/tmp/ws")).database_url_resolved
    'sqlite:////tmp/ws/mlship.db'
    """

    model_config = SettingsConfigDict(
        env_prefix="MLSHIP_",
        env_nested_delimiter="__",  # MLSHIP_PRICES__CPU_HOUR sets prices.cpu_hour
        toml_file=CONFIG_FILE,
        extra="forbid",
        frozen=True,
    )

    home: Path = Field(Path(".mlship"), description="Workspace directory of the embedded default.")
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the metadata store; SQLite in `home` when unset. A "
        "replicated PostgreSQL is a list of servers: `postgresql+psycopg://u@db1:5432,"
        "db2:5432/mlship?target_session_attrs=read-write`.",
    )
    database_retry_seconds: float = Field(
        30.0,
        ge=0,
        description="How long a unit of database work is retried on fresh connections after "
        "the server went away (a failover), before the command fails; 0 never retries.",
    )
    artifact_root: str | None = Field(
        None,
        description="Directory of the artifact store, or `s3://bucket/prefix` for object "
        "storage; `home`/artifacts when unset.",
    )
    s3_endpoint_url: str | None = Field(
        None,
        description="Endpoint of S3-compatible storage; AWS_ENDPOINT_URL or AWS's when unset.",
        pattern=r"^https?://[^\s/]+(/[^\s]*)?$",
    )
    s3_access_key_id: str | None = Field(
        None, description="Access key of the object storage; AWS_ACCESS_KEY_ID when unset."
    )
    s3_secret_access_key: SecretStr | None = Field(
        None, description="Its secret key; AWS_SECRET_ACCESS_KEY when unset."
    )
    s3_region: str | None = Field(
        None, description="Region of the object storage; AWS_REGION, else us-east-1, when unset."
    )
    user: str = Field(default_factory=_default_user, description="Who is acting, for the record.")
    n_jobs: int = Field(
        -1, description="Worker processes for cross-validation; -1 means all cores."
    )
    stream_above: ByteSize = Field(
        ByteSize(512 * 2**20),
        description="A single-file CSV or Parquet source (or a file to score) larger than this "
        "is read in bounded batches, so its size is not limited by memory; e.g. 512MiB, 2GB, "
        "0 for always.",
    )
    pii_key: SecretStr | None = Field(
        None, description="Key of the HMAC that pseudonymizes PII columns (32+ characters)."
    )
    pii_key_file: Path | None = Field(
        None, description="File holding that key; `home`/keys/pii.key (created once) when unset."
    )
    signing_key: SecretStr | None = Field(
        None, description="Key that signs model artifacts (32+ characters)."
    )
    signing_key_file: Path | None = Field(
        None,
        description="File holding that key; `home`/keys/signing.key (created once) when unset.",
    )
    signing_scheme: Literal["hmac-sha256", "ed25519"] = Field(
        "hmac-sha256", description="How new model versions are signed."
    )
    signing_private_key: SecretStr | None = Field(
        None, description="The Ed25519 private key (base64 of 32 bytes), for `ed25519` signing."
    )
    signing_private_key_file: Path | None = Field(
        None,
        description="File holding that key; `home`/keys/signing.ed25519 (created once) when unset.",
    )
    verify_key: str | None = Field(
        None, description="An Ed25519 public key (base64) that verifies without signing."
    )
    url: str | None = Field(
        None,
        description="A tracking server (`mlship server`) to use instead of the local stores.",
        pattern=r"^https?://[^\s/]+(/[^\s]*)?$",
    )
    token: SecretStr | None = Field(None, description="API token for the tracking server.")
    ca_bundle: Path | None = Field(
        None, description="CA certificate(s) to check the tracking server's TLS certificate."
    )
    retry_attempts: int = Field(
        5, ge=1, le=100, description="Tries of a call to the tracking server, the first included."
    )
    retry_seconds: float = Field(
        30.0, gt=0, le=3600, description="Longest a call to the tracking server keeps retrying."
    )
    encrypt_artifacts: bool = Field(
        False, description="Encrypt new artifacts (AES-256-GCM) under the keyring's current key."
    )
    encryption_key: SecretStr | None = Field(
        None,
        description="The current artifact key (base64 of 32 bytes); the keyring's when unset.",
    )
    encryption_key_file: Path | None = Field(
        None,
        description="The keyring of artifact keys; `home`/keys/artifacts.keyring when unset.",
    )
    refuse_plaintext_artifacts: bool = Field(
        False, description="Refuse to read an artifact that is not encrypted."
    )
    backup_root: str | None = Field(
        None,
        description="Where `mlship backup` keeps backups: a directory or `s3://bucket/prefix` "
        "(on another disk or bucket than the workspace); `--to` when unset.",
    )
    prices: Prices = Field(
        default_factory=Prices,
        description="What a CPU-hour and a GB-hour cost; `[prices]` in mlship.toml.",
    )
    catalog: CatalogSettings = Field(
        default_factory=CatalogSettings,
        description="Corrections and additions to the shipped price catalog; `[catalog]`.",
    )
    budgets: tuple[Budget, ...] = Field(
        (),
        description="Monthly budgets of teams and models; `[[budgets]]` in mlship.toml.",
    )
    gc: GcSettings = Field(
        default_factory=GcSettings,
        description="Retention and tiering rules of `mlship gc`; `[gc]` and `[[gc.rules]]`.",
    )

    @field_validator("database_url")
    @classmethod
    def _servers_listed_for_sqlalchemy(cls, url: str | None) -> str | None:
        return None if url is None else sqlalchemy_url(url)

    @field_validator("budgets")
    @classmethod
    def _one_budget_each(cls, budgets: tuple[Budget, ...]) -> tuple[Budget, ...]:
        problem = repeated(budgets)
        if problem is not None:
            raise ValueError(problem)
        return budgets

    @model_validator(mode="after")
    def _plaintext_refused_only_when_encrypting(self) -> Settings:
        if self.refuse_plaintext_artifacts and not self.encrypt_artifacts:
            raise ValueError(
                "refuse_plaintext_artifacts needs encrypt_artifacts: new artifacts would be "
                "written in plaintext and then refused"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @property
    def home_resolved(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def lock_file(self) -> Path:
        """The lock that serialises setting the workspace up (schema, keys) between processes."""
        return self.home_resolved / ".lock"

    @property
    def database_url_resolved(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home_resolved / 'mlship.db'}"

    @property
    def pii_key_file_resolved(self) -> Path:
        default = self.home / "keys" / "pii.key"
        path = self.pii_key_file if self.pii_key_file is not None else default
        return path.expanduser().resolve()

    @property
    def signing_key_file_resolved(self) -> Path:
        default = self.home / "keys" / "signing.key"
        path = self.signing_key_file if self.signing_key_file is not None else default
        return path.expanduser().resolve()

    @property
    def encryption_key_file_resolved(self) -> Path:
        default = self.home / "keys" / "artifacts.keyring"
        path = self.encryption_key_file if self.encryption_key_file is not None else default
        return path.expanduser().resolve()

    @property
    def signing_private_key_file_resolved(self) -> Path:
        default = self.home / "keys" / "signing.ed25519"
        path = self.signing_private_key_file if self.signing_private_key_file else default
        return path.expanduser().resolve()

    @property
    def artifact_url(self) -> str | None:
        """The ``s3://bucket/prefix`` of an artifact store in object storage, else None."""
        root = self.artifact_root
        return root if root is not None and root.startswith("s3://") else None

    @property
    def artifact_root_resolved(self) -> Path:
        """The directory of a local artifact store (ConfigError for one in object storage)."""
        if self.artifact_url is not None:
            raise ConfigError(
                f"the artifact store is in object storage ({self.artifact_url}); this works on "
                "a local artifact store only (MLSHIP_ARTIFACT_ROOT a directory)"
            )
        root = Path(self.artifact_root) if self.artifact_root else self.home / "artifacts"
        return root.expanduser().resolve()

    @property
    def cold_root_resolved(self) -> Path | None:
        """Where a local store's cold tier is: ``gc.cold_path``, or None for the store's own
        ``cold/`` folder."""
        return Path(self.gc.cold_path).expanduser().resolve() if self.gc.cold_path else None


def load_settings(**overrides: object) -> Settings:
    """Read settings, turning a validation failure into an error that names the source and field."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"{field_name(tuple(err['loc']))}: {err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors()
        )
        where = f"{Path(CONFIG_FILE).resolve()} or MLSHIP_* environment variables"
        raise ConfigError(f"invalid settings in {where}: {problems}") from exc
    except (OSError, ValueError) as exc:  # a malformed TOML file
        raise ConfigError(f"cannot read {os.path.abspath(CONFIG_FILE)}: {exc}") from exc
