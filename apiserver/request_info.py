"""Parse a request path into what it addresses, as apiserver's RequestInfoFactory does.

`/api/v1/namespaces/default/pods/p1/status` -> group "", version v1, namespace default,
resource pods, name p1, subresource status. Also the deprecated `/watch/` prefix and the
namespace subresources (`namespaces/<n>/status|finalize`). Trailing and doubled slashes are
ignored. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})


@dataclass(frozen=True)
class RequestInfo:
    group: str
    version: str
    resource: str
    namespace: str = ""
    name: str = ""
    subresource: str = ""
    watch_prefix: bool = False


def path_parts(path: str) -> list[str]:
    return [p for p in path.split("/") if p]


def normalize_path(path: str) -> str:
    return "/" + "/".join(path_parts(path))


def parse_resource_path(path: str) -> RequestInfo | None:
    """The resource a path names, or None for non-resource paths and bare group paths."""
    parts = path_parts(path)
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    if not rest:
        return None
    watch_prefix = False
    if rest[0] == "watch":
        watch_prefix = True
        rest = rest[1:]
        if not rest:
            return None
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
        else:
            # the namespace object itself: namespaces/<name>[/status|finalize]
            return RequestInfo(
                group, version, "namespaces", "", rest[1], rest[2] if len(rest) > 2 else "", watch_prefix
            )
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if len(rest) > 3:
        return None
    return RequestInfo(group, version, resource, namespace, name, subresource, watch_prefix)
