"""``mlship init`` then ``mlship run`` with no edits, on scikit-learn's bundled data sets and on a
generated messy pair of CSVs; and init's refusals."""

from __future__ import annotations

import csv
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mlship.spec import load_spec
from tests.conftest import invoke_cli


def _bundled(loader: Callable[..., Any], path: Path) -> Path:
    loader(as_frame=True).frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("name", "task", "metric"),
    [
        ("breast_cancer", "classification", "balanced_accuracy"),
        ("wine", "classification", "balanced_accuracy"),
        ("diabetes", "regression", "r2"),
    ],
)
def test_init_then_run_on_a_bundled_data_set(
    tmp_path: Path, name: str, task: str, metric: str
) -> None:
    from sklearn import datasets

    data = _bundled(getattr(datasets, f"load_{name}"), tmp_path / f"{name}.csv")
    home = tmp_path / "home"
    spec_path = tmp_path / "project" / "pipeline.yaml"
    written = invoke_cli("init", str(data), "-o", str(spec_path), home=home)
    assert f"{task}, target target" in written.stdout
    spec = load_spec(spec_path).spec
    assert (spec.task, spec.metric, spec.sources[0].path) == (task, metric, f"../{name}.csv")
    assert all(c.type in ("float", "integer") and not c.nullable for c in spec.features)
    ran = invoke_cli("run", str(spec_path), home=home)
    assert f"Registered {spec.name}:1" in ran.stdout


def _messy(directory: Path) -> tuple[Path, Path]:
    rng = random.Random(7)
    words = ["the", "invoice", "was", "late", "and", "support", "called", "back", "a", "refund"]
    customers, billing = directory / "customers.csv", directory / "billing.csv"
    with customers.open("w", newline="", encoding="utf-8") as stream:
        out = csv.writer(stream)
        out.writerow(["customer_id", "full_name", "email", "age", "income", "since", "plan",
                      "notes", "churned"])  # fmt: skip
        for i in range(240):
            income = "-" if i % 23 == 0 else f"{rng.uniform(1000, 9000):.2f}"
            day = f"2024-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"
            out.writerow(
                [
                    f"K{i:05d}",
                    f"Person {i}",
                    f"p{i}@example.org",
                    rng.choice(["n/a", "?", ""]) if i % 17 == 0 else rng.randint(18, 90),
                    income,
                    rng.choice([f"{day}T10:00:00Z", f"{day} 08:30:00+02:00", day]),
                    rng.choice(["basic", "pro", "team"]),
                    " ".join(rng.choice(words) for _ in range(rng.randint(8, 16))),
                    "yes" if income != "-" and float(income) < 3500 else "no",
                ]
            )
    with billing.open("w", newline="", encoding="utf-8") as stream:
        out = csv.writer(stream)
        out.writerow(["customer_id", "monthly", "plan"])
        for i in range(0, 240, 2):
            out.writerow([f"K{i:05d}", f"{rng.uniform(10, 99):.2f}", "annual"])
    return customers, billing


def test_init_then_run_on_messy_csvs_joined_on_their_shared_key(tmp_path: Path) -> None:
    _messy(tmp_path)
    home = tmp_path / "home"
    written = invoke_cli(
        "init", "customers.csv", "billing.csv", "--target", "churned", home=home, cwd=tmp_path
    )
    assert "id: customer_id" in written.stdout
    assert "pii: full_name, email" in written.stdout
    text = (tmp_path / "pipeline.yaml").read_text()
    assert "# PII candidate: review" in text
    raw = yaml.safe_load(text)
    assert raw["sources"][0]["values"] == {"null_values": ["-", "?", "n/a"]}
    assert raw["sources"][1]["mapping"] == {"rename": {"plan": "plan_billing"}}
    spec = load_spec(tmp_path / "pipeline.yaml").spec
    assert spec.combine.joins[0].source == "billing"
    assert spec.combine.joins[0].on == ["customer_id"]
    types = {c.name: (c.type, c.role) for c in spec.columns}
    assert types["age"] == ("integer", "feature") and types["income"] == ("float", "feature")
    assert types["since"] == ("datetime", "feature")
    assert types["churned"] == ("boolean", "target")
    assert types["notes"] == ("string", "feature")
    ran = invoke_cli("run", "pipeline.yaml", home=home, cwd=tmp_path)
    assert "Registered customers:1" in ran.stdout


def test_init_refuses_to_overwrite_and_names_what_is_wrong(tmp_path: Path) -> None:
    from sklearn.datasets import load_wine

    data = _bundled(load_wine, tmp_path / "wine.csv")
    home = tmp_path / "home"
    spec_path = tmp_path / "pipeline.yaml"
    spec_path.write_text("mine\n")
    refused = invoke_cli("init", str(data), "-o", str(spec_path), home=home, check=False)
    assert refused.returncode == 1
    assert "exists; pass --force to overwrite it" in refused.stderr
    assert spec_path.read_text() == "mine\n"

    unknown = invoke_cli(
        "init", str(data), "--target", "colour", "-o", str(spec_path), "--force",
        home=home, check=False,
    )  # fmt: skip
    assert unknown.returncode == 1 and "--target 'colour': no source has this column" in (
        unknown.stderr
    )
    assert spec_path.read_text() == "mine\n"

    (tmp_path / "other.csv").write_text("code,size\nx,1\ny,2\n")
    unjoined = invoke_cli(
        "init", str(data), str(tmp_path / "other.csv"), "-o", str(spec_path), "--force",
        home=home, check=False,
    )  # fmt: skip
    assert unjoined.returncode == 1 and "other: shares no column" in unjoined.stderr

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    missing = invoke_cli("init", "nope.csv", home=home, check=False, cwd=fresh)
    assert missing.returncode == 1 and "nope.csv" in missing.stderr
    assert "does not exist" in missing.stderr and list(fresh.iterdir()) == []

    forced = invoke_cli("init", str(data), "-o", str(spec_path), "--force", home=home)
    assert "Wrote" in forced.stdout and load_spec(spec_path).spec.name == "wine"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_init_of_only_a_target_and_an_id_says_there_is_no_feature(tmp_path: Path) -> None:
    (tmp_path / "ids.csv").write_text("user_id,y\n1,a\n2,b\n3,a\n")
    result = invoke_cli("init", "ids.csv", home=tmp_path / "home", cwd=tmp_path, check=False)
    assert result.returncode == 1
    assert "no column besides the target 'y' can be a feature" in result.stderr
    assert not (tmp_path / "pipeline.yaml").exists()


_cell = st.one_of(
    st.integers(-1000, 1000).map(str),
    st.floats(-1e6, 1e6, allow_nan=False).map(lambda f: f"{f:.3f}"),
    st.sampled_from(["", "n/a", "?", "-", "NA", "yes", "no", "2024-05-01T10:00:00Z", "a@b.io"]),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12),
)


@settings(derandomize=True, max_examples=25, deadline=None)
@given(
    st.integers(2, 4).flatmap(
        lambda width: st.lists(
            st.lists(_cell, min_size=width, max_size=width), min_size=2, max_size=20
        )
    )
)
def test_the_command_on_generated_csvs_writes_a_spec_that_loads_or_says_why_not(
    rows: list[list[str]],
) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder)
        header = [f"c{i}" for i in range(len(rows[0]))]
        with (directory / "data.csv").open("w", newline="", encoding="utf-8") as stream:
            csv.writer(stream).writerows([header, *rows])
        result = invoke_cli("init", "data.csv", home=directory / "home", cwd=directory, check=False)
        assert "Traceback" not in result.stderr
        if result.returncode == 0:
            spec = load_spec(directory / "pipeline.yaml").spec
            assert [c.name for c in spec.columns] == header and spec.target.name == header[-1]
        else:
            assert (
                result.stderr.startswith("error: ") and not (directory / "pipeline.yaml").exists()
            )


def test_a_rare_class_gets_fewer_folds_so_the_run_can_stratify(tmp_path: Path) -> None:
    rng = random.Random(1)
    lines = ["x,z,y"] + [
        f"{rng.random():.3f},{rng.randint(0, 9)},{'rare' if i % 20 == 0 else rng.choice('ab')}"
        for i in range(80)
    ]
    (tmp_path / "small.csv").write_text("\n".join(lines) + "\n")
    home = tmp_path / "home"
    invoke_cli("init", "small.csv", home=home, cwd=tmp_path)
    text = (tmp_path / "pipeline.yaml").read_text()
    assert "3-fold CV on the rest (the rarest class has 4 rows)" in text
    assert load_spec(tmp_path / "pipeline.yaml").spec.split.folds == 3
    assert (
        "Registered small:1" in invoke_cli("run", "pipeline.yaml", home=home, cwd=tmp_path).stdout
    )


def test_init_reads_parquet_and_json_lines_with_their_own_types(tmp_path: Path) -> None:
    import pandas as pd

    frame = pd.DataFrame(
        {
            "order_id": [f"O{i}" for i in range(60)],
            "amount": [float(i) * 1.5 for i in range(60)],
            "count": list(range(60)),
            "placed": pd.date_range("2024-01-01", periods=60, freq="D", tz="UTC"),
            "flag": [i % 2 == 0 for i in range(60)],
        }
    )
    frame.to_parquet(tmp_path / "orders.parquet")
    frame[["order_id"]].assign(channel=["web", "shop"] * 30).to_json(
        tmp_path / "channels.jsonl", orient="records", lines=True
    )
    home = tmp_path / "home"
    invoke_cli(
        "init", "orders.parquet", "channels.jsonl", "--target", "amount", home=home, cwd=tmp_path
    )
    spec = load_spec(tmp_path / "pipeline.yaml").spec
    types = {c.name: (c.type, c.role) for c in spec.columns}
    assert types == {
        "order_id": ("string", "id"),
        "amount": ("float", "target"),
        "count": ("integer", "feature"),
        "placed": ("datetime", "feature"),
        "flag": ("boolean", "feature"),
        "channel": ("category", "feature"),
    }
    assert spec.task == "regression" and spec.combine.joins[0].on == ["order_id"]
    assert (
        "Registered orders:1" in invoke_cli("run", "pipeline.yaml", home=home, cwd=tmp_path).stdout
    )


def test_init_reads_a_query_given_as_url_hash_query(tmp_path: Path) -> None:
    import sqlite3

    from sklearn.datasets import load_diabetes

    data = tmp_path / "data"
    data.mkdir()
    with sqlite3.connect(data / "clinic.sqlite") as db:
        load_diabetes(as_frame=True).frame.to_sql("patients", db, index=False)
    home = tmp_path / "home"
    invoke_cli(
        "init", "sqlite:///data/clinic.sqlite#SELECT * FROM patients", "-o", "spec/pipeline.yaml",
        home=home, cwd=tmp_path,
    )  # fmt: skip
    spec = load_spec(tmp_path / "spec" / "pipeline.yaml").spec
    source = spec.sources[0]
    assert (source.name, source.url, source.query) == (
        "patients", "sqlite:///../data/clinic.sqlite", "SELECT * FROM patients",
    )  # fmt: skip
    assert spec.task == "regression" and spec.target.name == "target"
    ran = invoke_cli("run", "spec/pipeline.yaml", home=home, cwd=tmp_path)
    assert "Registered patients:1" in ran.stdout


def test_init_reads_a_latin_1_csv_with_semicolons_and_says_so_in_the_spec(tmp_path: Path) -> None:
    rows = ["ville;prix;vendu"] + [
        f"{['Orléans', 'Besançon', 'Nîmes'][i % 3]};{100 + i * 7};{'oui' if i % 2 else 'non'}"
        for i in range(40)
    ]
    (tmp_path / "ventes.csv").write_bytes(("\n".join(rows) + "\n").encode("latin-1"))
    home = tmp_path / "home"
    refused = invoke_cli("init", "ventes.csv", home=home, cwd=tmp_path, check=False)
    assert refused.returncode == 1 and "ventes" in refused.stderr and "encoding" in refused.stderr
    invoke_cli(
        "init", "ventes.csv", "--encoding", "latin-1", "--delimiter", ";", home=home, cwd=tmp_path
    )
    spec = load_spec(tmp_path / "pipeline.yaml").spec
    assert (spec.sources[0].encoding, spec.sources[0].delimiter) == ("latin-1", ";")
    ville = next(c for c in spec.columns if c.name == "ville")
    assert ville.checks[0].allowed == ["Besançon", "Nîmes", "Orléans"]
    assert (
        "Registered ventes:1" in invoke_cli("run", "pipeline.yaml", home=home, cwd=tmp_path).stdout
    )


def test_a_class_of_one_row_is_named_by_init_and_stops_the_run_clearly(tmp_path: Path) -> None:
    rng = random.Random(3)
    lines = ["x,z,y"] + [
        f"{rng.random():.3f},{rng.randint(0, 9)},{'lone' if i == 0 else rng.choice('ab')}"
        for i in range(60)
    ]
    (tmp_path / "lone.csv").write_text("\n".join(lines) + "\n")
    home = tmp_path / "home"
    invoke_cli("init", "lone.csv", home=home, cwd=tmp_path)
    text = (tmp_path / "pipeline.yaml").read_text()
    assert "# class 'lone' has 1 row: a stratified split needs at least 3" in text
    ran = invoke_cli("run", "pipeline.yaml", home=home, cwd=tmp_path, check=False)
    assert ran.returncode == 1 and "Traceback" not in ran.stderr
    assert "class 'lone' has 1 row(s); a stratified test split needs at least 2 rows" in " ".join(
        ran.stderr.split()
    )


def test_init_joins_three_files_in_the_order_their_keys_allow_and_runs(tmp_path: Path) -> None:
    rng = random.Random(5)
    (tmp_path / "orders.csv").write_text(
        "order_id,customer_id,amount,late\n"
        + "".join(
            f"o{i},c{i % 40},{rng.uniform(5, 500):.2f},{'yes' if rng.random() < 0.4 else 'no'}\n"
            for i in range(200)
        )
    )
    (tmp_path / "regions.csv").write_text("region_id,density\nr0,10.5\nr1,200\nr2,35\n")
    (tmp_path / "customers.csv").write_text(
        "customer_id,region_id,age\n" + "".join(f"c{i},r{i % 3},{20 + i}\n" for i in range(40))
    )
    home = tmp_path / "home"
    invoke_cli(
        "init", "orders.csv", "regions.csv", "customers.csv", "--target", "late",
        home=home, cwd=tmp_path,
    )  # fmt: skip
    spec = load_spec(tmp_path / "pipeline.yaml").spec
    assert [(j.source, j.on) for j in spec.combine.joins] == [
        ("customers", ["customer_id"]),
        ("regions", ["region_id"]),
    ]
    ran = invoke_cli("run", "pipeline.yaml", home=home, cwd=tmp_path)
    assert "Registered orders:1" in ran.stdout
