"""Planted-bug variants of the reference engine: each breaks one promise, and a named check must catch it.

This is how the checklist proves it bites (Hypothesis's ``bad_machines``, Schemathesis's modifiers): a
check that passes against every variant below could never fail, and would be a defect. Each variant is
the smallest plausible mistake a real sync engine makes, written as an override of one method.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, time
from typing import Any

import httpx

from sync.conversion import Conversion
from sync.dataflow import Dataflow
from sync.engine import Engine, FlowPlan, Mapping
from sync.linking import Linking
from sync.values import AMSTERDAM

__all__ = ["FIRST_FEED_PAGE_ONLY", "FIRST_PAGE_ONLY", "PLANTED_BUGS", "PlantedBug"]


class DroppedPropertyEngine(Engine):
    """Forgets one property of every flow: a customer's phone number never reaches Exact (nor comes back)."""

    def plan(self, flow: Any) -> FlowPlan | str:
        plan = super().plan(flow)
        if isinstance(plan, str):
            return plan
        return replace(plan, mappings=tuple(m for m in plan.mappings if m.crm_field != "Phone"))


class _UtcDates(Conversion):
    def to_exact_value(self, mapping: Mapping, value: Any) -> Any:
        if mapping.kind == "date" and value is not None:
            midnight = datetime.combine(date.fromisoformat(value), time(0), tzinfo=AMSTERDAM)
            return midnight.astimezone(UTC).replace(tzinfo=None).isoformat()
        return super().to_exact_value(mapping, value)


class WrongTimeZoneEngine(Engine):
    """Sends dates to Exact as UTC instead of Amsterdam wall time: midnight in Amsterdam becomes 22:00 or
    23:00 of the day before, so Exact shows the previous day."""

    conversion_class = _UtcDates


class EchoingEngine(Engine):
    """Skips echo suppression: whatever a change feed mentions is pushed whole to the other side,
    without comparing with the last synced snapshot, so the engine's own writes come back as changes."""

    def is_echo(self, *args: Any) -> bool:
        return False

    def merge(self, plan: FlowPlan, snapshot: dict[str, Any], crm_values: dict[str, Any],
              exact_values: dict[str, Any], crm_first: bool, changed: set[str]
              ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        to_crm, to_exact_, new_snapshot = super().merge(plan, snapshot, crm_values, exact_values, crm_first,
                                                        changed)
        if "exact" in changed:
            to_crm = dict(exact_values)
        if "customcrm" in changed:
            to_exact_ = dict(crm_values)
        return to_crm, to_exact_, new_snapshot


class _NeverMatches(Linking):
    def find_matches(self, plan: FlowPlan, conditions: dict[str, Any]) -> list[dict[str, Any]]:
        return []


class DuplicatingEngine(Engine):
    """Never looks for an existing Exact record with the merge key, so it creates a duplicate."""

    linking_class = _NeverMatches


class OverwritingEngine(Engine):
    """Overwrites instead of merging: when a record changed on both sides, the side with the later edit
    wins for every property, so the other side's edit of another property is lost."""

    def merge(self, plan: FlowPlan, snapshot: dict[str, Any], crm_values: dict[str, Any],
              exact_values: dict[str, Any], crm_first: bool, changed: set[str]
              ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        # A snapshot that matches neither side: every differing property goes to the side edited last.
        blind = {m.id: _NEITHER for m in plan.header}
        return super().merge(plan, {**snapshot, **blind}, crm_values, exact_values, crm_first, changed)


_NEITHER = object()


class DeletePropagatingEngine(Engine):
    """Deletes the other side when a record is deleted, instead of retiring the link."""

    def __init__(self, doc: Dataflow, *args: Any, **kwargs: Any) -> None:
        super().__init__(doc, *args, **kwargs)
        retire = self.store.retire

        def retire_and_delete(flow: str, crm_id: str, exact_id: str, deleted_in: str) -> None:
            plan = self.plan(next(f for f in self.doc.flows if f.id == flow))
            if not isinstance(plan, str):
                if deleted_in == "customcrm":
                    self.exact.delete(plan.entity, exact_id)
                else:
                    self.crm.delete(plan.resource, crm_id)
            retire(flow, crm_id, exact_id, deleted_in)

        self.store.retire = retire_and_delete  # type: ignore[method-assign]


class _OlderWins(Conversion):
    def crm_wins(self, plan: FlowPlan, crm_record: dict[str, Any], exact_record: dict[str, Any]) -> bool:
        crm_time, exact_time = self.crm_modified(plan, crm_record), self.exact_modified(plan, exact_record)
        if crm_time == exact_time:
            return self.priority == "customcrm"
        return crm_time < exact_time


class OlderEditWinsEngine(Engine):
    """Compares modification times the wrong way round: the older of two edits wins."""

    conversion_class = _OlderWins


class LosesEditAfterCrashEngine(Engine):
    """Saves its change-feed cursors as soon as it has read the changes, before applying them: a pass
    killed half-way skips the rest of those changes for ever."""

    def sync_flow(self, plan: FlowPlan, report: Any, *, full: bool = False) -> None:
        crm_changes, exact_changes = self.crm.changes, self.exact.changes
        flow_id = plan.flow.id

        def crm_read(resource: Any, after: str | None) -> Any:
            events, cursor = crm_changes(resource, after)
            if cursor is not None:
                self.store.set_cursor(f"{flow_id}:customcrm", cursor)
            return events, cursor

        def exact_read(entity: Any, fields: list[str], after: int) -> Any:
            rows, cursor = exact_changes(entity, fields, after)
            self.store.set_cursor(f"{flow_id}:exact", str(cursor))
            return rows, cursor

        self.crm.changes, self.exact.changes = crm_read, exact_read  # type: ignore[method-assign]
        try:
            super().sync_flow(plan, report, full=full)
        finally:
            del self.crm.changes, self.exact.changes


class _WrongRow(Conversion):
    def to_exact_value(self, mapping: Mapping, value: Any) -> Any:
        right = super().to_exact_value(mapping, value)
        if mapping.kind != "ref" or value is None or mapping.ref_flow is None:
            return right
        others = [link.exact_id for link in self.store.links(mapping.ref_flow) if link.crm_id != str(value)]
        return others[0] if others else right


class BrokenReferenceEngine(Engine):
    """Looks a reference up in the wrong row: it points Exact at another linked record of the same flow."""

    conversion_class = _WrongRow


_DROP = object()  # a value the rewriting leaves out of the body altogether


class _Rewriting(httpx.BaseTransport):
    """Alters the JSON bodies the engine sends (POST and PUT), every value through `alter(key, value)`."""

    def __init__(self, inner: httpx.BaseTransport, alter: Callable[[str, Any], Any]) -> None:
        self.inner, self.alter = inner, alter

    def _walk(self, key: str, value: Any) -> Any:
        if isinstance(value, dict):
            walked = {k: self._walk(k, v) for k, v in value.items()}
            return {k: v for k, v in walked.items() if v is not _DROP}
        if isinstance(value, list):
            return [self._walk(key, v) for v in value]
        return self.alter(key, value)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method in ("POST", "PUT", "PATCH") and request.content and "/api/v1/" in request.url.path:
            body = self._walk("", json.loads(request.content))
            headers = [(k, v) for k, v in request.headers.items() if k.lower() != "content-length"]
            request = httpx.Request(request.method, request.url, headers=headers, json=body)
        return self.inner.handle_request(request)


class _Twice(httpx.BaseTransport):
    """Sends every update (PUT) twice: write amplification, invisible in the end state."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PUT":
            self.inner.handle_request(request).read()
        return self.inner.handle_request(request)


class _NoIfMatch(httpx.BaseTransport):
    """Leaves out the If-Match header: an update overwrites whatever a user wrote since the engine read."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if "if-match" in request.headers:
            headers = [(k, v) for k, v in request.headers.items() if k.lower() != "if-match"]
            request = httpx.Request(request.method, request.url, headers=headers, content=request.content)
        return self.inner.handle_request(request)


class _FirstPageOnly(httpx.BaseTransport):
    """Hides every list's link to its next page (Exact's ``__next``; Customcrm's ``has_more`` and
    ``next_cursor``): whatever the engine's code, it reads the first page of each list and feed only."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method != "GET" or "json" not in response.headers.get("content-type", ""):
            return response
        body = json.loads(response.read())
        page = body.get("d") if isinstance(body, dict) else None
        if isinstance(page, dict):
            page.pop("__next", None)
        if isinstance(body, dict) and body.get("has_more"):
            body["has_more"] = False
        if isinstance(body, dict) and "items" in body:
            body["next_cursor"] = None
        headers = [(k, v) for k, v in response.headers.items() if k.lower() not in ("content-length",
                                                                                   "content-encoding")]
        return httpx.Response(response.status_code, headers=headers, json=body, request=request)


def _at_the_boundary(name: str, what: str, system: str,
                     wrap: Callable[[httpx.BaseTransport], httpx.BaseTransport]) -> type[Engine]:
    """The reference engine with a defect between it and one system (`exact` or `crm`): a transport around
    its client, so the defect holds whatever the engine's code looks like inside. `what` says which."""

    def __init__(self: Engine, *args: Any, **kwargs: Any) -> None:
        Engine.__init__(self, *args, **kwargs)
        connector = getattr(self, system)
        client = connector.client
        connector.client = httpx.Client(base_url=client.base_url, headers=client.headers, timeout=client.timeout,
                                        transport=wrap(client._transport))

    return type(name, (Engine,), {"__init__": __init__, "__doc__": what})


def _sends_to_exact(name: str, what: str, alter: Callable[[str, Any], Any]) -> type[Engine]:
    """The reference engine with every value it sends to Exact passed through `alter(key, value)`."""
    return _at_the_boundary(name, what, "exact", lambda inner: _Rewriting(inner, alter))


def _sends_to_customcrm(name: str, what: str, alter: Callable[[str, Any], Any]) -> type[Engine]:
    """The reference engine with every value it sends to Customcrm passed through `alter(key, value)`."""
    return _at_the_boundary(name, what, "crm", lambda inner: _Rewriting(inner, alter))


class _LosesSomeWrites(httpx.BaseTransport):
    """Every second update is answered as done (204) and never made: a lost write, acknowledged."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner, self.updates = inner, 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PUT":
            self.updates += 1
            if self.updates % 2 == 0:
                return httpx.Response(204, request=request)
        return self.inner.handle_request(request)


class _KeepsDeletedLines(httpx.BaseTransport):
    """Answers the removal of an Exact line as done (204) and never removes it."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE" and "Lines(guid'" in request.url.path:
            return httpx.Response(204, request=request)
        return self.inner.handle_request(request)


def _text(change: Callable[[str], str]) -> Callable[[str, Any], Any]:
    return lambda _key, value: change(value) if isinstance(value, str) else value


LowerCasedEmailEngine = _sends_to_exact("LowerCasedEmailEngine", "E-mail addresses lower-cased on the way to Exact.",
                                        lambda k, v: v.lower() if k.endswith("Email") and isinstance(v, str) else v)
WholeQuantityEngine = _sends_to_exact("WholeQuantityEngine", "Line quantities truncated to whole numbers.",
                                      lambda k, v: float(int(v)) if k == "Quantity" and isinstance(v, float) else v)
CollapsedLineBreakEngine = _sends_to_exact("CollapsedLineBreakEngine", "Line breaks collapsed to spaces.",
                                           _text(lambda v: re.sub(r"\r?\n", " ", v)))
TrimmingEngine = _sends_to_exact("TrimmingEngine", "Leading and trailing whitespace trimmed.", _text(str.strip))
AstralDroppingEngine = _sends_to_exact("AstralDroppingEngine", "Characters outside the Basic Multilingual Plane "
                                       "(emoji) dropped.", _text(lambda v: "".join(c for c in v if ord(c) <= 0xFFFF)))
NormalisingEngine = _sends_to_exact("NormalisingEngine", "Text normalised to NFC (decomposed letters composed).",
                                    _text(lambda v: unicodedata.normalize("NFC", v)))
RoundingEngine = _sends_to_exact("RoundingEngine", "Numbers rounded to two decimals.",
                                 lambda k, v: round(v, 2) if isinstance(v, float) else v)
DroppedClearEngine = _sends_to_exact("DroppedClearEngine", "A cleared value is left out of the update instead of "
                                     "sent as empty, so Exact keeps the old one.",
                                     lambda k, v: _DROP if v is None or v == "" else v)
LineMishandlingEngine = _at_the_boundary(
    "LineMishandlingEngine", "Never removes a line from Exact: a line deleted in Customcrm stays on the Exact order.",
    "exact", _KeepsDeletedLines)
FirstPageOnlyEngine = _at_the_boundary(
    "FirstPageOnlyEngine", "Reads only the first page of every Exact list and never follows ``__next``: a division "
    "with more users than one page (60) holds owners the engine never matches, and their orders get no "
    "Salesperson.", "exact", _FirstPageOnly)
FirstFeedPageOnlyEngine = _at_the_boundary(
    "FirstFeedPageOnlyEngine", "Reads only the first page of every Customcrm list and change feed: changes past it "
    "wait for a later pass, or are never seen.", "crm", _FirstPageOnly)
DroppedFalseAndZeroEngine = _sends_to_exact(
    "DroppedFalseAndZeroEngine", "false and 0 are left out of what is sent to Exact, as if they were empty, so "
    "Exact keeps the old value.", lambda k, v: _DROP if v is False or (type(v) in (int, float) and v == 0) else v)
OneWayPropertyEngine = _sends_to_customcrm(
    "OneWayPropertyEngine", "The phone number goes from Customcrm to Exact but never back: an edit in Exact is "
    "not carried to Customcrm.", lambda k, v: _DROP if k == "Phone" else v)
LosesSomeWritesEngine = _at_the_boundary(
    "LosesSomeWritesEngine", "Every second update to Exact is acknowledged and never made.", "exact",
    _LosesSomeWrites)
_EXACT_LENGTHS = {"Name": 50, "Barcode": 20, "ExtraDescription": 255}
CutToFitEngine = _sends_to_exact("CutToFitEngine", "Text longer than Exact takes cut to fit, without a word.",
                                 lambda k, v: v[:_EXACT_LENGTHS[k]] if k in _EXACT_LENGTHS and isinstance(v, str)
                                 else v)
DoubleWriteEngine = _at_the_boundary("DoubleWriteEngine", "Sends every update to Exact twice: the data ends right, "
                                     "and each edit costs two of Exact's calls.", "exact", _Twice)
LostUpdateEngine = _at_the_boundary("LostUpdateEngine", "Writes to Customcrm without If-Match: a user's edit made "
                                    "while the pass runs is overwritten.", "crm", _NoIfMatch)


class PlantedBug:
    """One planted bug: the engine variant, the flow to run, and the check that must catch it."""

    def __init__(self, name: str, engine: type[Engine], flow: str, check: str, target: str = "inproc") -> None:
        self.name, self.engine, self.flow, self.check, self.target = name, engine, flow, check, target

    def __repr__(self) -> str:
        return f"PlantedBug({self.name!r} -> {self.flow} / {self.check})"


PLANTED_BUGS: tuple[PlantedBug, ...] = (
    PlantedBug("drops-a-property", DroppedPropertyEngine, "customer-accounts", "property:Phone"),
    PlantedBug("wrong-time-zone", WrongTimeZoneEngine, "contact-contacts", "property:BirthDate"),
    PlantedBug("echoes-own-writes", EchoingEngine, "customer-accounts", "no-echo"),
    PlantedBug("duplicates-instead-of-linking", DuplicatingEngine, "customer-accounts", "link"),
    PlantedBug("overwrites-without-merging", OverwritingEngine, "customer-accounts", "conflict"),
    PlantedBug("propagates-deletes", DeletePropagatingEngine, "customer-accounts", "delete-not-propagated"),
    PlantedBug("older-edit-wins", OlderEditWinsEngine, "customer-accounts", "conflict"),
    PlantedBug("loses-edit-after-crash", LosesEditAfterCrashEngine, "customer-accounts", "stays-in-sync-faults"),
    PlantedBug("breaks-a-reference", BrokenReferenceEngine, "contact-contacts", "references"),
    PlantedBug("mishandles-lines", LineMishandlingEngine, "order-salesorders", "lines"),
    # At the HTTP boundary: what users type, altered on the way to Exact.
    PlantedBug("lower-cases-e-mails", LowerCasedEmailEngine, "customer-accounts", "property:Email"),
    PlantedBug("truncates-quantities", WholeQuantityEngine, "order-salesorders",
               "property:Lines.Quantity->SalesOrderLines.Quantity"),
    PlantedBug("collapses-line-breaks", CollapsedLineBreakEngine, "contact-contacts", "property:Notes"),
    PlantedBug("trims-whitespace", TrimmingEngine, "customer-accounts", "property:Name"),
    PlantedBug("drops-emoji", AstralDroppingEngine, "contact-contacts", "property:JobTitle->JobTitleDescription"),
    PlantedBug("normalises-unicode", NormalisingEngine, "customer-accounts", "property:City"),
    PlantedBug("rounds-numbers", RoundingEngine, "customer-accounts", "property:CreditLimit->CreditLineSales"),
    PlantedBug("cuts-text-to-fit", CutToFitEngine, "customer-accounts", "too-long"),
    PlantedBug("drops-clears", DroppedClearEngine, "customer-accounts", "clear"),
    PlantedBug("writes-every-update-twice", DoubleWriteEngine, "product-items", "write-budget"),
    PlantedBug("loses-an-update-without-if-match", LostUpdateEngine, "customer-accounts", "concurrent-edit",
               target="server"),  # in-process mocks answer one request at a time: no edit lands mid-write
    # The order's owner: the rule checks of the users flow.
    PlantedBug("drops-false-and-zero", DroppedFalseAndZeroEngine, "customer-accounts", "property:Blocked"),
    PlantedBug("one-way-property", OneWayPropertyEngine, "customer-accounts", "property:Phone"),
    PlantedBug("loses-some-writes", LosesSomeWritesEngine, "customer-accounts", "edit-customcrm"),
    PlantedBug("drops-a-cleared-owner", DroppedClearEngine, "user-salesorders", "clear"),
    PlantedBug("older-reassignment-wins", OlderEditWinsEngine, "user-salesorders", "conflict"),
    PlantedBug("echoes-an-owner", EchoingEngine, "user-salesorders", "no-echo"),
    PlantedBug("propagates-an-order-delete", DeletePropagatingEngine, "user-salesorders", "delete-not-propagated"),
)

# Caught only where a list is longer than a page: the checks side by side give it one
# (see tests/conformance/test_batch.py).
FIRST_PAGE_ONLY = PlantedBug("reads-the-first-page-only", FirstPageOnlyEngine, "user-salesorders",
                             "property:Id->Salesperson")
# Caught at ci (the volume check runs there, 1,001 records in one pass), so kept apart from the smoke list too.
FIRST_FEED_PAGE_ONLY = PlantedBug("reads-the-first-feed-page-only", FirstFeedPageOnlyEngine, "customer-accounts",
                                  "paging")
