"""The users a check needs: Customcrm users, and for the matched ones an Exact user with the same e-mail.

Exact's API cannot create users: the mocks are seeded through their admin plane, and a sandbox's users are
the ones its division already has (read once per run), each given a Customcrm user of the same e-mail.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hypothesis import strategies as st

from conformance.failures import NotApplicable
from conformance.strategies import next_unique

if TYPE_CHECKING:
    from conformance.context import FlowContext

__all__ = ["add_users", "exact_users"]


def add_users(ctx: FlowContext, data: st.DataObject, count: int, *, matched: bool) -> list[str]:
    """Customcrm users; `matched` ones get an Exact user with the same e-mail (seeded: the API cannot)."""
    if ctx.safe:
        return _sandbox_users(ctx, count, matched=matched)
    created = []
    for _ in range(count):
        n = next_unique()
        name = data.draw(st.sampled_from(["Sam Sales", "Ida de Vries", "Ole Nordmann", "Zoë Ångström"]))
        email = f"user{n}@example.com"
        user = ctx.crm.create("users", {"FullName": name, "Email": email})
        created.append(user["Id"])
        if matched:
            seeded = ctx.systems.admin("exact", "seed", {"users": [{"Email": email, "FullName": name}]})
            exact_id = str(seeded["seeded_users"][0]).lower()  # the mock says which id it gave the user
            ctx.pools.setdefault("User", {})[user["Id"]] = exact_id
            ctx.names[exact_id] = name
    return created


def _sandbox_users(ctx: FlowContext, count: int, *, matched: bool) -> list[str]:
    """In a sandbox, matched users are the Exact users already there (the API cannot create any), with
    the Customcrm user of the same e-mail (created if there is none); unmatched ones are new and tagged."""
    out: list[str] = []
    if not matched:
        for _ in range(count):
            out.append(str(ctx.crm.create("users", {"FullName": "Una Matched",
                                                     "Email": ctx.unique("user@example.com")})["Id"]))
        return out
    with ctx.systems.users_lock:  # checks side by side share the division's users: one finds or creates
        return _match_sandbox_users(ctx, count, out)


def _match_sandbox_users(ctx: FlowContext, count: int, out: list[str]) -> list[str]:
    taken = set(ctx.pools.get("User", {}).values())
    for exact_user in exact_users(ctx):
        exact_id = str(exact_user["UserID"]).lower()
        email = exact_user.get("Email")
        if len(out) == count or not email or exact_id in taken:
            continue
        found = ctx.crm.find("users", Email=email)
        crm_user = found[0] if found else ctx.crm.create("users", {"FullName": exact_user.get("FullName")
                                                                    or email, "Email": email})
        out.append(str(crm_user["Id"]))
        ctx.pools.setdefault("User", {})[str(crm_user["Id"])] = exact_id
        ctx.names[exact_id] = str(exact_user.get("FullName") or "")
    if not out:
        raise NotApplicable("the sandbox's Exact division has no user with an e-mail address to match a "
                            "Customcrm user with")
    return out


def exact_users(ctx: FlowContext, email: str | None = None) -> list[dict[str, Any]]:
    """Exact's users (those with this e-mail), every page of them. A sandbox's users are read once per
    run: the API cannot create or change any, so the list stands."""
    if email is None and ctx.safe:
        with ctx.systems.users_lock:
            if ctx.systems.exact_user_list is None:
                ctx.systems.exact_user_list = _read_exact_users(ctx, None)
            return list(ctx.systems.exact_user_list)
    return _read_exact_users(ctx, email)


def _read_exact_users(ctx: FlowContext, email: str | None) -> list[dict[str, Any]]:
    params: dict[str, str] | None = {"$filter": "Email eq '" + email.replace("'", "''") + "'"} if email else None
    url = ctx.exact.url("users/Users")
    users: list[dict[str, Any]] = []
    while url:
        response = ctx.exact.client.get(url, params=params, headers=ctx.exact._headers())
        response.raise_for_status()
        body = response.json()["d"]
        users.extend(body["results"])
        url, params = body.get("__next") or "", None
    return users
