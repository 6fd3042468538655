"""Finding every resource the apiserver serves, from its discovery documents.

Used where a component must handle kinds it was not written for (the namespace controller
deleting a namespace's contents, the garbage collector watching every kind).
"""

from __future__ import annotations

from kubelite import resources
from kubelite.client import ApiClient
from kubelite.objects import Object
from kubelite.resources import Resource


async def namespaced_deletable(client: ApiClient) -> list[Resource]:
    """Every namespaced resource that supports list and delete, in every served group-version."""
    return [r for r in await served_resources(client) if r.namespaced and {"list", "delete"} <= set(r.verbs)]


async def preferred_group_versions(client: ApiClient) -> list[str]:
    """`v1` and the preferred version of every served group, as `/apis` lists them."""
    out = ["v1"]
    groups = await client.get_path("/apis")
    for group in groups.get("groups") or []:
        preferred = group.get("preferredVersion") or (group.get("versions") or [{}])[0]
        if preferred.get("groupVersion"):
            out.append(preferred["groupVersion"])
    return out


def served_from_list(resource_list: Object) -> list[Resource]:
    """The top-level resources of one APIResourceList with their verbs. A resource kubelite knows
    is its own `kubelite.resources` entry, so it keys the same shared informer as elsewhere."""
    group_version = resource_list.get("groupVersion", "v1")
    group, _, version = group_version.rpartition("/")
    known = {(r.group, r.version, r.plural): r for r in resources.ALL}
    out = []
    for entry in resource_list.get("resources") or []:
        name = entry.get("name", "")
        if not name or "/" in name:
            continue
        res = known.get((group, version, name))
        if res is None:
            res = Resource(
                group,
                version,
                name,
                entry.get("kind", ""),
                bool(entry.get("namespaced")),
                entry.get("singularName", ""),
                tuple(entry.get("shortNames") or ()),
                tuple(entry.get("categories") or ()),
                verbs=tuple(entry.get("verbs") or ()),
            )
        out.append(res)
    return out


async def served_resources(client: ApiClient) -> list[Resource]:
    """Every top-level resource the apiserver serves, in the preferred version of its group, with
    the verbs it supports. Any discovery call that fails fails the whole, so a caller never takes
    a group it could not read for a group that went away."""
    out: list[Resource] = []
    for group_version in await preferred_group_versions(client):
        path = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
        out.extend(served_from_list(await client.get_path(path)))
    return out
