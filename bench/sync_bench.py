"""Benchmarks of the reference engine against the in-process mocks.

    python bench/sync_bench.py initial [--scale 1.0]      # the issue's data set (scale 0.1 for a quick look)
    python bench/sync_bench.py idle [--sizes 1000 10000 100000]
    python bench/sync_bench.py edits

`initial` loads 10,000 customers, 20,000 contacts, 2,000 products, 5,000 orders of 3 lines, 2,000 quotes of
2 lines and 50 users into the Customcrm mock, runs passes until one is quiet, and reports wall time,
records per second and the calls made to each system against the minimum (one write per record, reads
at the largest page size). `idle` links N customers, then times a pass with nothing changed. `edits`
changes one record on each side and counts the writes of the next pass.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from conformance.dataset import Sizes, edit_one_record_each_side, make_dataset  # noqa: E402
from conformance.engines import connect_engine  # noqa: E402
from conformance.systems import Systems  # noqa: E402
from mocks.customcrm.models import RESOURCES  # noqa: E402
from sync.dataflow import load_dataflow  # noqa: E402
from sync.engine import Engine  # noqa: E402
from sync.http import HttpPolicy  # noqa: E402

ISSUE_SIZES = Sizes(customers=10_000, contacts=20_000, products=2_000, orders=5_000, order_lines=3, quotes=2_000,
                    quote_lines=2, users=50)


def _engine(systems: Systems, flows: list[str] | None = None) -> Engine:
    return connect_engine(load_dataflow(), systems, systems.client("customcrm"), systems.client("exact"),
                          policy=HttpPolicy(sleep=lambda _s: None), flows=flows)


def _load(systems: Systems, data: dict[str, list[dict[str, Any]]]) -> int:
    """Put the data set into the Customcrm mock through its state (the API would take as long as the sync)."""
    state = systems.customcrm_state
    tenant = state.tenant("default")
    ids: dict[str, list[str]] = {}
    for kind in ("customers", "users", "products"):
        ids[kind] = [state.create(tenant, RESOURCES[kind], r)["Id"] for r in data[kind]]
    for c in data["contacts"]:
        body = {k: v for k, v in c.items() if not k.startswith("_") and v is not None}
        state.create(tenant, RESOURCES["contacts"], body | {"CustomerId": ids["customers"][c["_customer"]]})
    for kind in ("orders", "quotes"):
        for record in data[kind]:
            body = {k: v for k, v in record.items() if not k.startswith("_")}
            body["CustomerId"] = ids["customers"][record["_customer"]]
            if record.get("_owner") is not None:
                body["OwnerId"] = ids["users"][record["_owner"]]
            body["Lines"] = [{"ProductId": ids["products"][line["_product"]], "Quantity": line["Quantity"],
                              "UnitPrice": line["UnitPrice"]} for line in record["_lines"]]
            state.create(tenant, RESOURCES[kind], body)
    systems.exact_state.seed({"users": [{"Email": u["Email"], "FullName": u["FullName"]} for u in data["users"]]})
    return sum(len(v) for v in data.values())


def initial(scale: float) -> dict[str, Any]:
    sizes = Sizes(**{k: (max(1, round(v * scale)) if k not in ("order_lines", "quote_lines") else v)
                     for k, v in ISSUE_SIZES.__dict__.items()})
    systems = Systems.start("inproc")
    try:
        records = _load(systems, make_dataset(sizes, seed=1))
        engine = _engine(systems)
        started = time.perf_counter()
        first = engine.run_pass()
        first_s = time.perf_counter() - started
        passes, calls = 1, {"customcrm": dict(first.calls["customcrm"]), "exact": dict(first.calls["exact"])}
        report = first
        while report.writes:
            report = engine.run_pass()
            passes += 1
            for system in calls:
                for method, n in report.calls[system].items():
                    calls[system][method] = calls[system].get(method, 0) + n
        total_s = time.perf_counter() - started
    finally:
        systems.close()
    exact_records = sizes.customers + sizes.contacts + sizes.products + sizes.orders + sizes.quotes
    feeds = 7 + 2  # one sync feed per flow's entity, plus the line feeds of orders and quotes
    minimum_exact_reads = sum(math.ceil(n / 1000) for n in (sizes.customers, sizes.contacts, sizes.products,
                                                            sizes.orders, sizes.quotes,
                                                            sizes.orders * sizes.order_lines,
                                                            sizes.quotes * sizes.quote_lines)) + feeds
    minimum_crm_reads = sum(math.ceil(n / 1000) for n in (sizes.customers, sizes.contacts, sizes.products,
                                                          sizes.orders, sizes.quotes, sizes.users))
    return {"sizes": sizes.__dict__, "customcrm_records": records, "exact_records_created": exact_records,
            "first_pass_s": round(first_s, 1), "until_quiet_s": round(total_s, 1), "passes": passes,
            "records_per_s": round(records / first_s, 1), "calls": calls,
            "minimum": {"exact_writes": exact_records, "exact_reads": minimum_exact_reads,
                        "customcrm_reads": minimum_crm_reads}}


def idle(sizes: list[int], rounds: int = 5) -> list[dict[str, Any]]:
    out = []
    for n in sizes:
        systems = Systems.start("inproc")
        try:
            state = systems.customcrm_state
            tenant = state.tenant("default")
            for i in range(n):
                state.create(tenant, RESOURCES["customers"], {"Name": f"Klant {i}", "Email": f"k{i}@example.com"})
            engine = _engine(systems, flows=["customer-accounts"])
            started = time.perf_counter()
            while engine.run_pass().writes:
                pass
            link_s = time.perf_counter() - started
            times, calls = [], None
            for _ in range(rounds):
                started = time.perf_counter()
                report = engine.run_pass()
                times.append(time.perf_counter() - started)
                calls = report.calls
                assert report.writes == 0
        finally:
            systems.close()
        out.append({"linked": n, "idle_pass_ms_median": round(statistics.median(times) * 1000, 1),
                    "idle_pass_calls": calls, "initial_link_s": round(link_s, 1)})
    return out


def edits() -> dict[str, Any]:
    systems = Systems.start("inproc")
    try:
        _load(systems, make_dataset(Sizes(customers=200, contacts=200, products=20, orders=50, quotes=20), seed=2))
        engine = _engine(systems)
        while engine.run_pass().writes:
            pass
        edit_one_record_each_side(systems.customcrm_actor(), systems.exact_actor())
        report = engine.run_pass()
        after = engine.run_pass()
    finally:
        systems.close()
    return {"pass_after_one_edit_each_side": report.calls, "writes": report.writes, "next_pass_writes": after.writes}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    first = sub.add_parser("initial")
    first.add_argument("--scale", type=float, default=1.0)
    quiet = sub.add_parser("idle")
    quiet.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    sub.add_parser("edits")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    result: Any = initial(args.scale) if args.what == "initial" else idle(args.sizes) if args.what == "idle" \
        else edits()
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
