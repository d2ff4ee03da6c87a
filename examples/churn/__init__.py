"""Customer churn: a realistic tabular classification example.

Six thousand customers of a subscription service with numeric, categorical and boolean columns,
some missing values, and a churn label (about 5% positives) that depends on contract, tenure,
charges and support calls the way it does in real churn data. Generated from a fixed seed, so
every machine gets the same bytes and the same model.
"""

from __future__ import annotations

import shutil
import sqlite3
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
        -4.1
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


def _names(rng: np.random.Generator, n: int) -> tuple[list[str], list[str]]:
    first = [
        "ana",
        "ben",
        "chloe",
        "dev",
        "eva",
        "finn",
        "gia",
        "hugo",
        "ines",
        "jon",
        "kim",
        "leo",
    ]
    last = ["silva", "meyer", "novak", "okafor", "park", "quinn", "rossi", "sato", "tan", "ueda"]
    f = rng.choice(first, n)
    la = rng.choice(last, n)
    names = [f"{a.title()} {b.title()}" for a, b in zip(f, la, strict=True)]
    emails = [f"{a}.{b}{i}@example.com" for i, (a, b) in enumerate(zip(f, la, strict=True))]
    return names, emails


def _split_sources(customers: pd.DataFrame, rng: np.random.Generator) -> dict[str, pd.DataFrame]:
    """Spread the customer table over the systems a real company keeps it in."""
    n = len(customers)
    names, emails = _names(rng, n)
    snapshot = pd.Timestamp("2026-10-01", tz="UTC")
    crm = pd.DataFrame(
        {
            "customer_id": customers["customer_id"],
            "full_name": names,
            "email": emails,
            "age": customers["age"].astype("object").where(customers["age"].notna(), None),
            "contract": customers["contract"],
            "internet_service": customers["internet_service"],
            "payment_method": customers["payment_method"],
            "paperless_billing": customers["paperless_billing"],
            "snapshot_at": snapshot.isoformat(),
            "churned": customers["churned"],
        }
    )
    billing = pd.DataFrame(
        {
            "customer_id": customers["customer_id"],
            "tenure_months": customers["tenure_months"],
            "monthly_charges_cents": (customers["monthly_charges"] * 100).round().astype("int64"),
            "total_charges": customers["total_charges"],
        }
    )
    # Support tickets are counted by a separate system that publishes running totals as events.
    # Only events up to the snapshot may be used; later ones would leak the future into training.
    events = []
    for cid, calls in zip(customers["customer_id"], customers["support_calls"], strict=True):
        events.append((cid, snapshot - pd.Timedelta(days=40), max(int(calls) - 1, 0)))
        events.append((cid, snapshot - pd.Timedelta(days=3), int(calls)))
        events.append((cid, snapshot + pd.Timedelta(days=10), int(calls) + 5))
    support = pd.DataFrame(events, columns=["customer_id", "ts", "support_calls"])
    support["ts"] = support["ts"].map(lambda t: t.isoformat())
    return {"crm": crm, "billing": billing, "support": support}


def _break_some_rows(crm: pd.DataFrame, billing: pd.DataFrame, rng: np.random.Generator) -> None:
    """What real exports contain: typos, impossible values and the same row twice."""
    rows = rng.choice(len(crm), 12, replace=False)
    crm.loc[rows[:4], "age"] = ["unknown", "forty", "n/a", "-"]
    crm.loc[rows[4:7], "contract"] = "??"
    billing.loc[rows[7:10], "monthly_charges_cents"] = -500
    crm.loc[rows[10:12], "age"] = [212, 180]


def write_project(directory: Path, n: int = 6000, seed: int = 7) -> Path:
    """Write the example into ``directory``: a spec and three sources, plus new customers to score.

    * ``data/crm.sqlite``: the CRM's ``customers`` table (a SQL source) with names and e-mail
      addresses (PII), the contract, and the churn label;
    * ``data/billing.parquet``: tenure and charges (in cents) from the billing system;
    * ``data/support_events.jsonl``: running totals of support calls, as timestamped events;
    * ``data/new_customers.csv``: 200 more customers, flat, to score with the trained model.

    A dozen rows are broken on purpose and a few are duplicated, so the run shows its quarantine.
    Returns the path of the spec file.
    """
    rng = np.random.default_rng(seed + 1)
    data_dir = directory / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    customers = make_customers(n + 200, seed)
    train, new = customers.iloc[:n].reset_index(drop=True), customers.iloc[n:]
    sources = _split_sources(train, rng)
    crm, billing = sources["crm"], sources["billing"]
    _break_some_rows(crm, billing, rng)
    duplicates = crm.sample(5, random_state=seed)
    crm = pd.concat([crm, duplicates], ignore_index=True)

    database = data_dir / "crm.sqlite"
    database.unlink(missing_ok=True)
    with sqlite3.connect(database) as connection:
        # Ages are free text in this CRM: the typos above are stored as typed.
        ages = [None if v is None or v is pd.NA or v != v else str(v) for v in crm["age"]]
        crm.assign(age=pd.Series(ages, dtype="object")).to_sql("customers", connection, index=False)
    billing.to_parquet(data_dir / "billing.parquet", index=False)
    sources["support"].to_json(data_dir / "support_events.jsonl", orient="records", lines=True)
    new.drop(columns=["churned"]).to_csv(data_dir / "new_customers.csv", index=False)
    spec_path = directory / SPEC_FILE
    shutil.copyfile(HERE / SPEC_FILE, spec_path)
    return spec_path
