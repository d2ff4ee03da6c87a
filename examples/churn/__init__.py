"""Customer churn: a realistic tabular classification example.

Six thousand customers of a subscription service with numeric, categorical and boolean columns,
some missing values, and a churn label that depends on contract, tenure, charges and support calls
the way it does in real churn data. Generated from a fixed seed, so every machine gets the same
bytes and the same model.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent
SPEC_FILE = "pipeline.yaml"


def make_customers(n: int = 6000, seed: int = 7) -> pd.DataFrame:
    """The customer table, churn label included."""
    rng = np.random.default_rng(seed)
    contract = rng.choice(["month-to-month", "one-year", "two-year"], n, p=[0.55, 0.25, 0.2])
    internet = rng.choice(["fiber", "dsl", "none"], n, p=[0.45, 0.35, 0.2])
    payment = rng.choice(
        ["card", "bank-transfer", "electronic-check", "mailed-check"], n, p=[0.3, 0.25, 0.3, 0.15]
    )
    tenure = np.clip(rng.gamma(2.0, 14.0, n).round(), 0, 72).astype(int)
    base = {"fiber": 80.0, "dsl": 55.0, "none": 25.0}
    monthly = np.array([base[i] for i in internet]) + rng.normal(0, 12, n)
    monthly = np.clip(monthly, 18.0, 120.0).round(2)
    total = (monthly * np.maximum(tenure, 1) * rng.normal(1.0, 0.03, n)).round(2)
    age = np.clip(rng.normal(44, 15, n).round(), 18, 90).astype(int)
    support_calls = rng.poisson(1.2 + (internet == "fiber") * 0.8, n)
    paperless = rng.random(n) < 0.6

    logit = (
        -1.6
        + 1.3 * (contract == "month-to-month")
        - 1.1 * (contract == "two-year")
        - 0.035 * tenure
        + 0.018 * (monthly - 60)
        + 0.35 * support_calls
        + 0.5 * (payment == "electronic-check")
        + 0.25 * paperless
        - 0.01 * (age - 44)
        + rng.normal(0, 0.6, n)
    )
    churned = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")

    frame = pd.DataFrame(
        {
            "customer_id": [f"C{100000 + i}" for i in range(n)],
            "age": pd.Series(age, dtype="Int64"),
            "tenure_months": tenure,
            "monthly_charges": monthly,
            "total_charges": total,
            "contract": contract,
            "internet_service": internet,
            "payment_method": pd.Series(payment, dtype="object"),
            "support_calls": support_calls,
            "paperless_billing": np.where(paperless, "yes", "no"),
            "churned": churned,
        }
    )
    # Real exports have holes: ages nobody asked for, charges not yet billed, unknown payment.
    frame.loc[rng.random(n) < 0.06, "age"] = pd.NA
    frame.loc[rng.random(n) < 0.03, "total_charges"] = np.nan
    frame.loc[rng.random(n) < 0.04, "payment_method"] = None
    return frame


def write_project(directory: Path, n: int = 6000, seed: int = 7) -> Path:
    """Write the example (spec, training data, new customers to score) into ``directory``.

    Returns the path of the spec file.
    """
    data_dir = directory / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    customers = make_customers(n + 200, seed)
    customers.iloc[:n].to_csv(data_dir / "customers.csv", index=False)
    customers.iloc[n:].drop(columns=["churned"]).to_csv(data_dir / "new_customers.csv", index=False)
    spec_path = directory / SPEC_FILE
    shutil.copyfile(HERE / SPEC_FILE, spec_path)
    return spec_path
