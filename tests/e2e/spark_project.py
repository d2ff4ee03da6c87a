"""The churn example as a CSV file with broken rows (and a Parquet file), for the Spark engine's
tests.

The example's customers (``mlship.examples.churn.make_customers``) in one flat file, with charges
in cents and an e-mail address (PII), plus rows that break in every way typing and checks know:
numbers that are not numbers, values out of range, unknown categories, missing-value markers,
empty required values, exact copies, and text Spark alone would read as a number (``1.5d``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mlship.examples.churn import make_customers

SPEC = """\
name: churn-flat
task: classification
engine: {engine}
spark:
  master: "local[2]"
  conf:
    spark.ui.enabled: "false"
    spark.sql.shuffle.partitions: "2"
    spark.default.parallelism: "2"
sources:
  - name: customers
    path: customers.csv
    mapping:
      rename: {{monthly_charges_cents: monthly_charges}}
      units: {{monthly_charges: {{from: cents, to: units}}}}
  - name: more
    path: more.parquet
    mapping:
      rename: {{monthly_charges_cents: monthly_charges}}
      units: {{monthly_charges: {{from: cents, to: units}}}}
columns:
  - {{name: customer_id, type: string, role: id, nullable: false, checks: [{{regex: "C[0-9]+"}}]}}
  - {{name: email, type: string, role: pii}}
  - name: age
    type: integer
    checks:
      - {{min: 18, max: 110}}
  - {{name: tenure_months, type: integer, nullable: false, checks: [{{min: 0}}]}}
  - {{name: monthly_charges, type: float, nullable: false, checks: [{{min: 0}}]}}
  - {{name: total_charges, type: float, checks: [{{max_missing: 0.1, severity: warn}}]}}
  - name: contract
    type: category
    nullable: false
    checks: [{{allowed: [month-to-month, one-year, two-year]}}]
  - {{name: internet_service, type: category}}
  - {{name: payment_method, type: category}}
  - {{name: support_calls, type: integer, checks: [{{max: 12, severity: warn}}]}}
  - {{name: paperless_billing, type: boolean}}
  - {{name: signed_up, type: datetime}}
  - {{name: churned, type: category, role: target, nullable: false}}
checks:
  duplicates: quarantine
  rules:
    - name: total_covers_monthly
      expr: "total_charges IS NULL OR total_charges >= monthly_charges * 0.5"
      severity: warn
  max_quarantine: 0.05
models:
  - {{name: logistic, estimator: logistic_regression, params: {{max_iter: 500}}}}
split: {{holdout: 0.2, folds: 2, seed: 1}}
metric: average_precision
executor: inline
"""

BROKEN: list[dict[str, str]] = [
    {"age": "unknown"},  # not a number: quarantined
    {"age": "n/a"},  # a missing-value marker in a nullable column: null, with a warning
    {"age": "212"},  # above the maximum
    {"age": " 44 "},  # spaces around a number are read
    {"tenure_months": ""},  # empty, but required
    {"tenure_months": "12.0"},  # a whole number written as a float
    {"tenure_months": "-"},  # a marker in a required column
    {"monthly_charges_cents": "-500"},  # below the minimum once in units
    {"monthly_charges_cents": "1.5d"},  # a Java double, not a number to mlship
    {"total_charges": "1e3"},
    {"age": "inf"},  # infinite: not an integer
    {"total_charges": "1"},  # breaks the warn rule
    {"contract": "??"},  # not an allowed category
    {"contract": ""},  # required
    {"paperless_billing": "maybe"},
    {"paperless_billing": "Y"},
    {"signed_up": "2026-13-01"},  # no such month
    {"signed_up": "2026-10-01 12:30"},
    {"signed_up": "2026-10-01T08:00:00.25+02:00"},
    {"support_calls": "40"},  # above a warn maximum: kept, counted
    {"customer_id": "X-1"},  # fails the id's pattern
]


def customers_frame(n: int) -> pd.DataFrame:
    """``n`` churn customers as text, as a CSV export would hold them, then the broken rows."""
    customers = make_customers(n, seed=11)
    frame = pd.DataFrame(
        {
            "customer_id": customers["customer_id"],
            "email": [f"person{i}@example.com" for i in range(n)],
            "age": customers["age"].astype("string").fillna(""),
            "tenure_months": customers["tenure_months"].astype(str),
            "monthly_charges_cents": (customers["monthly_charges"] * 100)
            .round()
            .astype(int)
            .astype(str),
            "total_charges": customers["total_charges"].map(
                lambda v: "" if v != v else repr(float(v))
            ),
            "contract": customers["contract"],
            "internet_service": customers["internet_service"],
            "payment_method": customers["payment_method"].fillna(""),
            "support_calls": customers["support_calls"].astype(str),
            "paperless_billing": customers["paperless_billing"],
            "signed_up": "2024-01-15T10:00:00Z",
            "churned": customers["churned"],
        }
    )
    broken = []
    for index, change in enumerate(BROKEN):
        row = frame.iloc[index % n].to_dict()
        row.update(change)
        row["customer_id"] = change.get("customer_id", f"C9{index:05d}")
        broken.append(row)
    copies = frame.iloc[[3, 7]]  # exact copies of earlier rows
    return pd.concat([frame, pd.DataFrame(broken), copies], ignore_index=True)


def more_customers(n: int = 30) -> pd.DataFrame:
    """Customers of a second system, in Parquet: values typed by the file (integers with
    missing ones, a whole and a fractional float in an integer column, booleans, timestamps)."""
    return pd.DataFrame(
        {
            "customer_id": [f"C8{i:05d}" for i in range(n)],
            "email": [f"more{i}@example.org" for i in range(n)],
            "age": pd.array([None if i % 7 == 0 else 20 + i for i in range(n)], dtype="Int64"),
            "tenure_months": [12.5 if i == 3 else float(i) for i in range(n)],  # 12.5: not whole
            "monthly_charges_cents": [1000 + 37 * i for i in range(n)],
            "total_charges": [np.nan if i == 4 else 500.0 + i for i in range(n)],
            "contract": ["one-year"] * n,
            "internet_service": ["dsl"] * n,
            "payment_method": ["card"] * n,
            "support_calls": [i % 3 for i in range(n)],
            "paperless_billing": [i % 2 == 0 for i in range(n)],
            "signed_up": pd.Timestamp("2025-01-01", tz="UTC"),
            "churned": ["yes" if i % 4 == 0 else "no" for i in range(n)],
        }
    )


def write_spark_project(directory: Path, engine: str, n: int = 400) -> Path:
    """Write the CSV, a Parquet file, and a spec that ingests both (stacked) with ``engine``;
    returns the spec's path."""
    directory.mkdir(parents=True, exist_ok=True)
    customers_frame(n).to_csv(directory / "customers.csv", index=False)
    more_customers().to_parquet(directory / "more.parquet", index=False)
    spec = directory / "pipeline.yaml"
    spec.write_text(SPEC.format(engine=engine))
    return spec
