"""Allocation claims: the store keys an object holds besides its own (a Service's cluster IP and
node ports), written in the same transaction as the object, so two objects never hold one value.

`writes` says which claim keys a change adds (guarded on being absent) and drops; `conflict`
turns a failed transaction into the 422 a user-chosen value someone else holds gets, or lets the
caller retry a value the server picked. Touches the store only to list taken keys.
"""

from __future__ import annotations

import functools
import json

from apiserver.bodies import invalid_object
from apiserver.errors import invalid as invalid_field
from apiserver.meta import JSONObject
from apiserver.resources import ResourceDef
from apiserver.storage import Absent, Delete, EtcdStore, Guard, Put, TxnResult, Write
from apiserver.strategy import Allocation, Claim


async def taken(store: EtcdStore, prefix: str) -> set[str]:
    page = await store.list(prefix, keys_only=True)
    return {kv.key for kv in page.items}


async def allocate(store: EtcdStore, rd: ResourceDef, obj: JSONObject, old: JSONObject | None) -> Allocation:
    """Server-picked values assigned, user-chosen ones checked; 422 for a bad one."""
    allocation = await rd.strategy.allocate(obj, old, functools.partial(taken, store))
    if allocation.errors:
        raise invalid_object(rd, obj, allocation.errors)
    return allocation


def writes(
    rd: ResourceDef, obj: JSONObject | None, old: JSONObject | None
) -> tuple[list[Guard], list[Write], dict[str, Claim]]:
    new_claims = {c.key: c for c in rd.strategy.claims(obj)} if obj is not None else {}
    old_claims = {c.key: c for c in rd.strategy.claims(old)} if old is not None else {}
    meta = (obj or old or {}).get("metadata") or {}
    owner = json.dumps(
        {"resource": rd.plural, "namespace": meta.get("namespace", ""), "name": meta.get("name", "")}
    )
    guards: list[Guard] = []
    writes: list[Write] = []
    added = {k: c for k, c in new_claims.items() if k not in old_claims}
    for key in added:
        guards.append(Absent(key))
        writes.append(Put(key, owner.encode()))
    for key in old_claims:
        if key not in new_claims:
            writes.append(Delete(key))
    return guards, writes, added


def conflict(
    rd: ResourceDef,
    obj: JSONObject,
    result: TxnResult,
    added: dict[str, Claim],
    automatic: set[str],
) -> None:
    """After a failed Txn: 422 for a user-chosen value someone holds; return to retry otherwise."""
    taken = [c for k, c in added.items() if result.current.get(k) is not None]
    user_taken = [c for c in taken if c.key not in automatic]
    if user_taken:
        raise invalid_object(rd, obj, [invalid_field(c.field, c.value, c.taken_detail) for c in user_taken])
