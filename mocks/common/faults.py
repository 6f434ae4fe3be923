"""Fault injection for the mocks: error statuses, latency, and writes committed but answered with an error.

Rules are set through the admin plane (``POST /_admin/faults``) or in-process, and match requests by
method and a regular expression on the path. Randomness comes from a seedable generator, so a faulty run
replays exactly. The rules are state, free of HTTP; `fault_middleware` applies them to requests.
"""

from __future__ import annotations

import random
import re
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["FaultRule", "Faults"]


@dataclass
class FaultRule:
    """One kind of fault. `status` answers before the request is handled (nothing is written);
    `drop_response` lets the request commit and then answers 504, as a timed-out gateway would."""

    path: str = ".*"
    method: str | None = None
    status: int | None = None
    rate: float = 1.0
    latency_ms: int = 0
    drop_response: bool = False
    times: int | None = None
    fired: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        if self.times is not None and self.fired >= self.times:
            return False
        return re.search(self.path, path) is not None


@dataclass
class Faults:
    rules: list[FaultRule] = field(default_factory=list)
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def set(self, rules: list[dict[str, Any]], seed: int | None = None) -> None:
        with self._lock:
            self.rules = [FaultRule(**{k: v for k, v in r.items() if k != "fired"}) for r in rules]
            if seed is not None:
                self.rng.seed(seed)

    def clear(self) -> None:
        with self._lock:
            self.rules = []

    def pick(self, method: str, path: str) -> FaultRule | None:
        with self._lock:
            for rule in self.rules:
                if rule.matches(method, path) and self.rng.random() < rule.rate:
                    rule.fired += 1
                    return rule
            return None

    def describe(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(r) for r in self.rules]
