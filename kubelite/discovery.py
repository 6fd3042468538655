"""Finding every resource the apiserver serves, from its discovery documents.

Used where a component must handle kinds it was not written for (the namespace controller
deleting a namespace's contents).
"""

from __future__ import annotations

from kubelite.client import ApiClient
from kubelite.objects import Object
from kubelite.resources import Resource


def resources_from_list(resource_list: Object) -> list[Resource]:
    """The top-level resources (no subresources) of one APIResourceList."""
    group_version = resource_list.get("groupVersion", "v1")
    group, _, version = group_version.rpartition("/")
    out = []
    for entry in resource_list.get("resources") or []:
        if "/" in entry.get("name", ""):
            continue
        out.append(
            Resource(group, version, entry["name"], entry.get("kind", ""), bool(entry.get("namespaced")))
        )
    return out


async def namespaced_deletable(client: ApiClient) -> list[Resource]:
    """Every namespaced resource that supports list and delete, in every served group-version."""
    paths = ["/api/v1"]
    groups = await client.get_path("/apis")
    for group in groups.get("groups") or []:
        preferred = group.get("preferredVersion") or (group.get("versions") or [{}])[0]
        if preferred.get("groupVersion"):
            paths.append(f"/apis/{preferred['groupVersion']}")
    out: list[Resource] = []
    for path in paths:
        listing = await client.get_path(path)
        verbs_by_name = {e["name"]: set(e.get("verbs") or []) for e in listing.get("resources") or []}
        for res in resources_from_list(listing):
            if res.namespaced and {"list", "delete"} <= verbs_by_name.get(res.plural, set()):
                out.append(res)
    return out
