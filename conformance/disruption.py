"""A pass that goes wrong on purpose, and the clean passes after it: what `stays-in-sync-faults` asks for.

The faults check injects faults into both mocks for one pass (429s, 503s, latency, writes that commit and
lose their answer) and may kill the engine mid-pass; then clean passes must reach the state a fault-free run
reaches. The disruption is data, so that the examples of the check can run side by side: the examples of
one flow share their engine passes (``Lockstep``), and a pass one of them disrupts is disrupted for all of
them, which each of them must survive as well, as a real engine's every record does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conformance.engines import EngineDriver
    from conformance.systems import Systems

__all__ = ["FAULT_RULES", "Disruption", "disrupted_pass"]

# Faults on the data APIs only: a lost token response is unrecoverable for any client, as in Exact itself.
FAULT_RULES: list[dict[str, Any]] = [
    {"path": "^/api/v1/", "status": 429, "rate": 0.04},
    {"path": "^/api/v1/", "status": 503, "rate": 0.04},
    {"path": "^/api/v1/", "latency_ms": 3, "rate": 0.05},
    {"path": "^/api/v1/", "method": "POST", "drop_response": True, "rate": 0.08},
    {"path": "^/api/v1/", "method": "PUT", "drop_response": True, "rate": 0.08},
    {"path": "^/api/v1/", "method": "PATCH", "drop_response": True, "rate": 0.08},
]


@dataclass(frozen=True)
class Disruption:
    """One pass run under faults drawn from `fault_seed` (None: no faults) with the engine killed after `kill`
    requests (-n: at its n-th write; None: not killed), then `clean` clean passes."""

    fault_seed: int | None
    kill: int | None
    clean: int


def disrupted_pass(systems: Systems, engine: EngineDriver, flows: list[str] | None, disruption: Disruption) -> None:
    """The disrupted pass itself (never the clean ones). Whatever it does to the engine is the point: a pass
    may fail under faults, and what counts is the recovery after it."""
    if disruption.fault_seed is not None:
        systems.set_faults(FAULT_RULES, seed=disruption.fault_seed)
    try:
        engine.sync(flows, interrupt_after=disruption.kill)
    except Exception:  # noqa: BLE001, S110 - a pass may fail under faults; what counts is recovery
        pass
    finally:
        if disruption.fault_seed is not None:
            systems.clear_faults()
