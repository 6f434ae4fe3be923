"""Checks of the reference flow "Customcrm User to Exact Salesorders": an order's owner is its Salesperson.

Users are matched by e-mail to Exact users (which the API cannot create), so a check seeds the Exact users
it needs through the mock's admin plane, then drives orders through both APIs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from conformance.context import FlowContext, NotApplicable
from conformance.people import add_users, exact_users
from conformance.registry import Check, Registry, property_checks
from conformance.strategies import next_unique
from sync.dataflow import Flow, PropertyRow

__all__ = ["user_checks"]



# The owner flow's checks, in the order of the report.
USER_CHECKS = Registry()


def _order(ctx: FlowContext, owner: str | None) -> tuple[str, str]:
    """A Customcrm order owned by `owner`, synced; returns its Customcrm and Exact ids."""
    customer = sorted(ctx.pools["Customer"])[0]
    product = sorted(ctx.pools["Product"])[0]
    number = ctx.unique(f"U-{next_unique():06d}")
    body: dict[str, Any] = {"OrderNumber": number, "CustomerId": customer,
                            "Lines": [{"ProductId": product, "Quantity": 1, "UnitPrice": 1}]}
    if owner is not None:
        body["OwnerId"] = owner
    order = ctx.crm.create("orders", body)
    ctx.sync()
    matches = [r for r in ctx.exact.all("sync/SalesOrder/SalesOrderHeaders") if r.get("YourRef") == number]
    if len(matches) != 1:
        raise ctx.failure(None, f"Customcrm Order {order['Id']} ({number}) gave {len(matches)} Exact "
                           "Salesorders; expected one")
    return str(order["Id"]), str(matches[0]["OrderID"]).lower()


def _expect_salesperson(ctx: FlowContext, check: str, crm_order: str, exact_order: str) -> None:
    order = ctx.crm.get("orders", crm_order) or {}
    header = ctx.exact.get("salesorder/SalesOrders", exact_order) or {}
    owner = order.get("OwnerId")
    expected = ctx.pools.get("User", {}).get(owner) if owner else None
    actual = str(header.get("Salesperson") or "").lower() or None
    if expected != actual:
        raise ctx.failure(check, f"Customcrm Order {crm_order} is owned by {owner!r} (Exact user "
                           f"{expected!r}) but Exact Salesorders {exact_order} has Salesperson {actual!r}")


def _prepare(ctx: FlowContext, data: st.DataObject) -> None:
    ctx.prepare(data, {"Customer", "Product", "User"})


@USER_CHECKS.check("create", "A user's new order gets the matching Exact user as Salesperson")
def _create(ctx: FlowContext, data: st.DataObject) -> None:
    _prepare(ctx, data)
    owner = data.draw(st.sampled_from(sorted(ctx.pools["User"])), label="owner")
    crm_order, exact_order = _order(ctx, owner)
    _expect_salesperson(ctx, "create", crm_order, exact_order)


@USER_CHECKS.check("link", "Users are matched by e-mail; an unmatched user leaves Salesperson empty")
def _link(ctx: FlowContext, data: st.DataObject) -> None:
    _prepare(ctx, data)
    [stranger] = add_users(ctx, data, 1, matched=False)
    email = str((ctx.crm.get("users", stranger) or {}).get("Email") or "").lower()
    crm_order, exact_order = _order(ctx, stranger)
    header = ctx.exact.get("salesorder/SalesOrders", exact_order) or {}
    if header.get("Salesperson"):
        raise ctx.failure("link", f"Customcrm User {stranger} has no Exact user with its e-mail, "
                           f"yet Exact Salesorders {exact_order} has Salesperson {header['Salesperson']}")
    if any(str(u.get("Email") or "").lower() == email for u in exact_users(ctx)):
        raise ctx.failure("link", f"the sync created an Exact user for Customcrm User {stranger} "
                           f"({email}); Exact users are matched by e-mail, never created")
    owner = sorted(ctx.pools["User"])[0]
    crm_order, exact_order = _order(ctx, owner)
    _expect_salesperson(ctx, "link", crm_order, exact_order)
    if not ctx.safe:  # a sandbox's Exact users cannot be created: there the user stays unmatched
        _matched_later(ctx, stranger, email)


def _matched_later(ctx: FlowContext, stranger: str, email: str) -> None:
    """An Exact user with the unmatched user's e-mail appears (an administrator adds one): the next pass links
    them, and the orders the user already owns get it as Salesperson though none of them was edited."""
    owned = [str(o["Id"]) for o in ctx.crm.find("orders", OwnerId=stranger)]
    ctx.systems.admin("exact", "seed", {"users": [{"Email": email, "FullName": "Matched Later"}]})
    exact_id = next(str(u["UserID"]).lower() for u in exact_users(ctx, email)
                    if str(u.get("Email") or "").lower() == email)
    ctx.pools.setdefault("User", {})[stranger] = exact_id
    ctx.sync()
    for crm_order in owned:
        number = (ctx.crm.get("orders", crm_order) or {}).get("OrderNumber")
        headers = [r for r in ctx.exact.all("sync/SalesOrder/SalesOrderHeaders") if r.get("YourRef") == number]
        for header in headers:
            _expect_salesperson(ctx, "link (an Exact user with the owner's e-mail appeared later)", crm_order,
                                str(header["OrderID"]).lower())


def _reassign(ctx: FlowContext, data: st.DataObject, side: str, crm_order: str, exact_order: str) -> None:
    current = (ctx.crm.get("orders", crm_order) or {}).get("OwnerId")
    others = [u for u in sorted(ctx.pools["User"]) if u != current]
    if not others:
        raise NotApplicable("reassigning an owner needs two Customcrm users matched to Exact users; the Exact "
                            "division has only one user with an e-mail address")
    new_owner = data.draw(st.sampled_from(others), label="new owner")
    if side == "customcrm":
        ctx.crm.update("orders", crm_order, {"OwnerId": new_owner})
    else:
        ctx.exact.update("salesorder/SalesOrders", exact_order, {"Salesperson": ctx.pools["User"][new_owner]})


def _edit(side: str) -> Callable[[FlowContext, st.DataObject], None]:
    check = f"edit-{side}"

    def run(ctx: FlowContext, data: st.DataObject) -> None:
        _prepare(ctx, data)
        crm_order, exact_order = _order(ctx, sorted(ctx.pools["User"])[0])
        _reassign(ctx, data, side, crm_order, exact_order)
        ctx.sync()
        _expect_salesperson(ctx, check, crm_order, exact_order)

    return run


USER_CHECKS.check("edit-customcrm", "Reassigning the owner in Customcrm changes the Salesperson")(_edit("customcrm"))
USER_CHECKS.check("edit-exact", "Changing the Salesperson in Exact reassigns the owner")(_edit("exact"))


def _stays_in_sync(ctx: FlowContext, data: st.DataObject) -> None:
    _prepare(ctx, data)
    orders = [_order(ctx, data.draw(st.sampled_from(sorted(ctx.pools["User"])), label="owner"))
              for _ in range(data.draw(st.integers(1, 2), label="orders"))]
    for step in data.draw(st.lists(st.sampled_from(["customcrm", "exact", "sync"]), max_size=5), label="steps"):
        if step == "sync":
            ctx.sync()
        else:
            crm_order, exact_order = data.draw(st.sampled_from(orders), label="order")
            _reassign(ctx, data, step, crm_order, exact_order)
    ctx.sync()
    for crm_order, exact_order in orders:
        _expect_salesperson(ctx, "stays-in-sync", crm_order, exact_order)
    before = _order_versions(ctx, orders)
    ctx.sync()
    after = _order_versions(ctx, orders)
    if before != after:
        raise ctx.failure("stays-in-sync", "a sync with no edits wrote to the orders")


def _order_versions(ctx: FlowContext, orders: list[tuple[str, str]]) -> list[tuple[Any, Any]]:
    """The versions of this example's orders on both sides (a write changes one)."""
    return [((ctx.crm.get("orders", crm_order) or {}).get("Version"),
             (ctx.exact.get("salesorder/SalesOrders", exact_order) or {}).get("Modified"))
            for crm_order, exact_order in orders]


def _owner(ctx: FlowContext, crm_order: str) -> str | None:
    owner = (ctx.crm.get("orders", crm_order) or {}).get("OwnerId")
    return str(owner) if owner else None


def _set_owner(ctx: FlowContext, side: str, crm_order: str, exact_order: str, owner: str | None) -> None:
    """Give the order this owner (None: none) on one side, as a user there would."""
    if side == "customcrm":
        ctx.crm.update("orders", crm_order, {"OwnerId": owner})
    else:
        ctx.exact.update("salesorder/SalesOrders", exact_order,
                         {"Salesperson": ctx.pools["User"][owner] if owner else None})


def _three_users(ctx: FlowContext, data: st.DataObject) -> list[str]:
    users = sorted(ctx.pools["User"])
    if len(users) < 3:
        add_users(ctx, data, 3 - len(users), matched=True)
        users = sorted(ctx.pools["User"])
    if len(users) < 3:
        raise NotApplicable("a conflict of owners needs three Customcrm users matched to Exact users; the Exact "
                            "division has fewer users with an e-mail address")
    return users


@USER_CHECKS.check("conflict", "The owner reassigned on both sides: the later reassignment wins", alone=True,
                   own_batch=True)
def _conflict(ctx: FlowContext, data: st.DataObject) -> None:
    """The owner reassigned on both sides between two passes: the later reassignment wins on both sides."""
    _prepare(ctx, data)
    first, second, third = _three_users(ctx, data)[:3]
    crm_order, exact_order = _order(ctx, first)
    earlier = data.draw(st.sampled_from(["customcrm", "exact"]), label="edited first")
    later = "exact" if earlier == "customcrm" else "customcrm"
    ctx.clocks.freeze()
    try:
        _set_owner(ctx, earlier, crm_order, exact_order, second)
        ctx.clocks.advance(5)
        _set_owner(ctx, later, crm_order, exact_order, third)
        ctx.sync()
    finally:
        ctx.clocks.release()
    if _owner(ctx, crm_order) != third:
        raise ctx.failure("conflict", f"Customcrm Order {crm_order} was given owner {second} in "
                           f"{earlier}, then {third} in {later}: the later one must win, yet Customcrm has "
                           f"{_owner(ctx, crm_order)!r}")
    _expect_salesperson(ctx, "conflict", crm_order, exact_order)


@USER_CHECKS.check("clear", "An owner cleared on either side is cleared on the other, and set again")
def _clear(ctx: FlowContext, data: st.DataObject) -> None:
    """An owner cleared on either side is cleared on the other, and set again from either side."""
    _prepare(ctx, data)
    users = sorted(ctx.pools["User"])
    crm_order, exact_order = _order(ctx, users[0])
    for side, owner, what in (("customcrm", None, "cleared in Customcrm"), ("exact", users[-1], "set in Exact"),
                              ("exact", None, "cleared in Exact"), ("customcrm", users[0], "set in Customcrm")):
        _set_owner(ctx, side, crm_order, exact_order, owner)
        ctx.sync()
        if _owner(ctx, crm_order) != owner:
            raise ctx.failure("clear", f"the owner of Customcrm Order {crm_order} was {what} to "
                               f"{owner!r}; Customcrm has {_owner(ctx, crm_order)!r}")
        _expect_salesperson(ctx, f"clear ({what})", crm_order, exact_order)


@USER_CHECKS.check("no-echo", "A pass with no edits writes nothing to an owner's orders")
def _no_echo(ctx: FlowContext, data: st.DataObject) -> None:
    """After an owner's order is synced and reassigned, a pass with no edits writes to neither side."""
    _prepare(ctx, data)
    users = sorted(ctx.pools["User"])
    orders = [_order(ctx, users[0])]
    _set_owner(ctx, data.draw(st.sampled_from(["customcrm", "exact"]), label="side"), *orders[0], users[-1])
    ctx.sync()
    before = _order_versions(ctx, orders)
    ctx.sync()
    if _order_versions(ctx, orders) != before:
        raise ctx.failure("no-echo", f"a pass with no edits wrote to Customcrm Order {orders[0][0]} "
                           f"or Exact Salesorders {orders[0][1]}: versions {before} became "
                           f"{_order_versions(ctx, orders)}")


@USER_CHECKS.check("link-fills-empty", "Linking an order without an owner to one with a Salesperson fills the owner")
def _link_fills_empty(ctx: FlowContext, data: st.DataObject) -> None:
    """An Exact order with a Salesperson and a Customcrm order of the same number without an owner: once
    linked, the Customcrm order has the matching user as its owner (an empty side never empties a filled
    one)."""
    _prepare(ctx, data)
    owner = data.draw(st.sampled_from(sorted(ctx.pools["User"])), label="owner")
    customer, product = sorted(ctx.pools["Customer"])[0], sorted(ctx.pools["Product"])[0]
    number = ctx.unique(f"L-{next_unique():06d}")
    existing = ctx.exact.create("salesorder/SalesOrders", {
        "OrderedBy": ctx.pools["Customer"][customer], "YourRef": number, "Salesperson": ctx.pools["User"][owner],
        "SalesOrderLines": [{"Item": ctx.pools["Product"][product], "Quantity": 1, "NetPrice": 1}]})
    order = ctx.crm.create("orders", {"OrderNumber": number, "CustomerId": customer,
                                      "Lines": [{"ProductId": product, "Quantity": 1, "UnitPrice": 1}]})
    ctx.sync()
    crm_order, exact_order = str(order["Id"]), str(existing["OrderID"]).lower()
    matches = [r for r in ctx.exact.all("sync/SalesOrder/SalesOrderHeaders") if r.get("YourRef") == number]
    if len(matches) != 1:
        raise ctx.failure("link-fills-empty", f"Customcrm Order {crm_order} has the number of Exact "
                           f"Salesorders {exact_order}; expected them linked, found {len(matches)} Exact orders")
    if _owner(ctx, crm_order) != owner:
        raise ctx.failure("link-fills-empty", f"Customcrm Order {crm_order} had no owner and was "
                           f"linked to Exact Salesorders {exact_order}, whose Salesperson is the Exact user of "
                           f"{owner}; Customcrm's owner is {_owner(ctx, crm_order)!r}")
    _expect_salesperson(ctx, "link-fills-empty", crm_order, exact_order)


@USER_CHECKS.check("delete-not-propagated", "A deleted order keeps its Exact order and Salesperson")
def _delete_not_propagated(ctx: FlowContext, data: st.DataObject) -> None:
    """An order deleted in Customcrm keeps its Exact order and its Salesperson; the Exact user stays."""
    _prepare(ctx, data)
    owner = sorted(ctx.pools["User"])[0]
    crm_order, exact_order = _order(ctx, owner)
    ctx.crm.delete("orders", crm_order)
    ctx.sync()
    header = ctx.exact.get("salesorder/SalesOrders", exact_order)
    if header is None:
        raise ctx.failure("delete-not-propagated", f"Customcrm Order {crm_order} was deleted and the "
                           f"sync deleted Exact Salesorders {exact_order}; deletes are not propagated")
    if str(header.get("Salesperson") or "").lower() != ctx.pools["User"][owner]:
        raise ctx.failure("delete-not-propagated", f"Customcrm Order {crm_order} was deleted and "
                           f"Exact Salesorders {exact_order} lost its Salesperson ({header.get('Salesperson')!r})")


def _property(row: PropertyRow) -> Callable[[FlowContext, st.DataObject], None]:
    check = f"property:{row.id}"

    def run(ctx: FlowContext, data: st.DataObject) -> None:
        _prepare(ctx, data)
        crm_order, exact_order = _order(ctx, data.draw(st.sampled_from(sorted(ctx.pools["User"])), label="owner"))
        if row.target.endswith("FullName"):
            header = ctx.exact.get("salesorder/SalesOrders", exact_order) or {}
            owner = (ctx.crm.get("orders", crm_order) or {}).get("OwnerId")
            user = ctx.crm.get("users", str(owner)) or {}
            if header.get(row.target) != user.get(row.source):
                raise ctx.failure(check, f"Customcrm User {owner} is {user.get(row.source)!r} "
                                   f"but Exact Salesorders {exact_order} shows {row.target}={header.get(row.target)!r}")
            return
        _expect_salesperson(ctx, check, crm_order, exact_order)
        for side in ("exact", "customcrm"):
            _reassign(ctx, data, side, crm_order, exact_order)
            ctx.sync()
            _expect_salesperson(ctx, f"{check} (edited in {side})", crm_order, exact_order)

    return run


USER_CHECKS.check("stays-in-sync", "Reassignments on both sides converge; a sync without edits writes nothing"
                  )(_stays_in_sync)


def user_checks(flow: Flow) -> list[Check]:
    """The owner flow's checks, then one check per property row of its table."""
    return [*USER_CHECKS, *property_checks(flow, _property)]
