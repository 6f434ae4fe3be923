"""The users flow: Customcrm users linked to Exact users by e-mail address.

Exact users cannot be created through the API, so a Customcrm user is linked when exactly one Exact user
has its e-mail address, and waits (pending) until one does. Once a user is linked, the orders and quotes it
already owns are revisited on the same pass, so they get their Salesperson without waiting for an edit.
Part of the engine (its store and connectors); apart so that the pass reads as a pass.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sync.planning import owner_field
from sync.sides import Side
from sync.systems.exact import USERS

if TYPE_CHECKING:
    from sync.engine import Engine, FlowPlan, FlowReport

__all__ = ["UserLinks"]


class UserLinks:
    """Links of Customcrm users to Exact users, kept by one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def sync(self, plan: FlowPlan, report: FlowReport) -> None:
        """Link Customcrm users to Exact users by e-mail; Exact users cannot be created through the API."""
        flow_id = plan.flow.id
        cursor_name = f"{flow_id}:customcrm"
        events, next_cursor = self.engine.crm.changes(plan.resource, self.engine.store.cursor(cursor_name))
        latest = {str(e["id"]): e for e in events}
        candidates = {crm_id: e.get("record") for crm_id, e in latest.items()}
        for crm_id in self.engine.store.pending(flow_id):
            candidates.setdefault(crm_id, None)
        exact_users: list[dict[str, Any]] | None = None  # read once a pass, when a user is to be matched
        for crm_id, record in candidates.items():
            if crm_id in latest and latest[crm_id]["op"] == "deleted":
                link = self.engine.store.link_by_crm(flow_id, crm_id)
                if link is not None:
                    self.engine.store.retire(flow_id, crm_id, link.exact_id, Side.CRM)
                    report.note(crm_id, "retired", "deleted in Customcrm")
                self.engine.store.drop_pending(flow_id, crm_id)
                continue
            if record is None:
                record = self.engine.crm.get(plan.resource, crm_id)
                if record is None:
                    self.engine.store.drop_pending(flow_id, crm_id)
                    continue
            email = str(record.get(plan.resource.match_field) or "").strip().lower()
            link = self.engine.store.link_by_crm(flow_id, crm_id)
            if email and exact_users is None:
                exact_users = self.engine.exact.users()
            matches = [u for u in exact_users or () if str(u.get(USERS.email) or "").strip().lower() == email] \
                if email else []
            if link is not None and any(str(u[USERS.key]).lower() == link.exact_id for u in matches):
                report.unchanged += 1
                self.engine.store.drop_pending(flow_id, crm_id)
                continue
            if link is not None:
                self.engine.store.drop_link(flow_id, crm_id)
            if len(matches) == 1:
                exact_id = str(matches[0][USERS.key]).lower()
                owner = self.engine.store.link_by_exact(flow_id, exact_id)
                if owner is not None:
                    report.note(crm_id, "ambiguous", f"Exact user {exact_id} is linked to Customcrm {owner.crm_id}")
                    continue
                self.engine.store.put_link(flow_id, crm_id, exact_id, {plan.resource.match_field: email})
                report.linked += 1
                self.engine.store.drop_pending(flow_id, crm_id)
                self.revisit_owned(crm_id)
            elif not matches:
                report.note(crm_id, "skipped", f"no Exact user has the e-mail address {email or '(none)'}; the "
                                               "orders it owns keep an empty Salesperson")
                self.engine.store.add_pending(flow_id, crm_id)
            else:
                report.note(crm_id, "ambiguous", f"{len(matches)} Exact users have the e-mail address {email}")
        if next_cursor is not None:
            self.engine.store.set_cursor(cursor_name, next_cursor)

    def revisit_owned(self, user_id: str) -> None:
        """A user was just linked: the orders and quotes it owns get their Salesperson on this pass."""
        for flow in self.engine.doc.flows:
            plan = self.engine.plan(flow)
            if isinstance(plan, str) or plan.kind != "records":
                continue
            owner = owner_field(plan.resource, "User")
            if owner and any(m.crm_field == owner for m in plan.header):
                for record in self.engine.crm.find(plan.resource, {owner: user_id}):
                    self.engine.store.add_pending(flow.id, str(record[plan.resource.key]))
