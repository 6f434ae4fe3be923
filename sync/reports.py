"""What a pass did, flow by flow and record by record, and how one record's failure is kept to itself."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sync.errors import AuthError, ConnectorError, LinkConflict, RejectedError, SyncError
from sync.store import LinkStore

__all__ = ["FlowReport", "Issue", "SyncReport", "Waiting", "call_delta", "guarded"]


class Waiting(SyncError):
    """A record refers to a record that is not linked yet; it is retried on the next pass."""


@dataclass(frozen=True)
class Issue:
    record: str
    kind: str  # "failed", "skipped", "ambiguous", "retired", "waiting"
    reason: str


@dataclass
class FlowReport:
    flow: str
    created: int = 0
    linked: int = 0
    updated_customcrm: int = 0
    updated_exact: int = 0
    unchanged: int = 0
    skipped: int = 0
    failed: int = 0
    retired: int = 0
    not_supported: str = ""
    issues: list[Issue] = field(default_factory=list)

    def note(self, record: str, kind: str, reason: str) -> None:
        self.issues.append(Issue(record, kind, reason))
        if kind in ("failed", "waiting"):
            self.failed += 1
        elif kind in ("skipped", "ambiguous", "held"):
            self.skipped += 1
        elif kind == "retired":
            self.retired += 1


@dataclass
class SyncReport:
    flows: list[FlowReport] = field(default_factory=list)
    calls: dict[str, dict[str, int]] = field(default_factory=dict)

    def flow(self, flow_id: str) -> FlowReport:
        for report in self.flows:
            if report.flow == flow_id:
                return report
        raise KeyError(flow_id)

    @property
    def writes(self) -> int:
        return sum(r.created + r.updated_customcrm + r.updated_exact for r in self.flows)

    def summary(self) -> str:
        lines = []
        for r in self.flows:
            if r.not_supported:
                lines.append(f"{r.flow}: not synchronized ({r.not_supported})")
                continue
            lines.append(
                f"{r.flow}: created {r.created}, linked {r.linked}, updated in Customcrm {r.updated_customcrm}, "
                f"updated in Exact {r.updated_exact}, unchanged {r.unchanged}, skipped {r.skipped}, "
                f"failed {r.failed}, retired {r.retired}"
            )
            lines.extend(f"  {i.kind}: {i.record}: {i.reason}" for i in r.issues)
        for system, calls in self.calls.items():
            lines.append(f"calls to {system}: " + ", ".join(f"{m} {n}" for m, n in sorted(calls.items())))
        return "\n".join(lines)


def guarded(store: LinkStore, flow_id: str, report: FlowReport, crm_id: str, action: Callable[[], None]) -> None:
    """One bad record does not stop a flow: it is reported and retried on the next pass."""
    try:
        action()
    except AuthError:
        raise
    except Waiting as exc:
        report.note(crm_id, "waiting", str(exc))
        store.add_pending(flow_id, crm_id)
    except RejectedError as exc:
        # The system refused the data itself (a value it cannot take: a name longer than Exact's 50
        # characters, say). It is reported once as failed; while the refusal stays the same it is
        # retried (what it waits for may arrive: after 1, 2, 4... passes, and at once when it is edited)
        # but listed as skipped, so cron is not alarmed every pass about what a person was already told.
        # Nothing is truncated or dropped.
        message = str(exc)
        if store.refusal(flow_id, crm_id) == message:
            report.note(crm_id, "skipped", f"still refused, as reported before: {message}")
        else:
            report.note(crm_id, "failed", f"{message} (reported once; edit the record to fix it)")
            store.note_refusal(flow_id, crm_id, message)
        store.note_refused_try(flow_id, crm_id)
        store.add_pending(flow_id, crm_id)
    except (ConnectorError, LinkConflict, ValueError) as exc:
        report.note(crm_id, "failed", str(exc))
        store.add_pending(flow_id, crm_id)
    else:
        store.drop_pending(flow_id, crm_id)
        store.forget_refusal(flow_id, crm_id)


def call_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """The calls made between two readings of a connector's counter, by method."""
    return {k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) - before.get(k, 0)}
