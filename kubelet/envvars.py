"""A container's environment and the `$(VAR)` expansion of its env, command and args.

Follows Kubernetes: variables are defined in order and may refer to earlier ones; `$(VAR)` of
an unknown variable is left as written; `$$` is an escaped `$`. Pure functions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from kubelite.objects import Object


class ContainerConfigError(ValueError):
    """The container cannot be configured (Kubernetes' CreateContainerConfigError)."""


def expand(text: str, env: Mapping[str, str]) -> str:
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch != "$" or i + 1 >= n:
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            end = text.find(")", i + 2)
            if end == -1:
                out.append(text[i:])
                break
            name = text[i + 2 : end]
            out.append(env[name] if name in env else text[i : end + 1])
            i = end + 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['([^']*)'\]$")


def field_value(pod: Object, field_path: str, host_ip: str, pod_ip: str) -> str:
    """The value of a downward-API fieldRef."""
    m = pod.get("metadata", {})
    spec = pod.get("spec", {})
    simple: dict[str, Any] = {
        "metadata.name": m.get("name", ""),
        "metadata.namespace": m.get("namespace", "default"),
        "metadata.uid": m.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.hostIP": host_ip,
        "status.hostIPs": host_ip,
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
    }
    if field_path in simple:
        return str(simple[field_path])
    sub = _SUBSCRIPT.match(field_path)
    if sub:
        return str((m.get(sub.group(1)) or {}).get(sub.group(2), ""))
    raise ContainerConfigError(f"unsupported fieldRef fieldPath {field_path!r}")


def referenced_configmaps(container: Object) -> set[str]:
    """Names of the ConfigMaps the container's env and envFrom read."""
    names = set()
    for var in container.get("env") or []:
        ref = (var.get("valueFrom") or {}).get("configMapKeyRef")
        if ref and ref.get("name"):
            names.add(ref["name"])
    for source in container.get("envFrom") or []:
        ref = source.get("configMapRef")
        if ref and ref.get("name"):
            names.add(ref["name"])
    return names


def container_env(
    pod: Object,
    container: Object,
    host_ip: str,
    pod_ip: str,
    configmaps: Mapping[str, Object | None] | None = None,
) -> dict[str, str]:
    """The container's env as an ordered dict, values expanded: envFrom first, then env.

    `configmaps` holds the ConfigMaps named by `referenced_configmaps` (None: not found).
    """
    configmaps = configmaps or {}
    namespace = pod.get("metadata", {}).get("namespace", "default")
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        ref = source.get("configMapRef")
        if not ref:
            kinds = ", ".join(sorted(source))
            raise ContainerConfigError(f"envFrom {kinds} is not supported by kubelite yet")
        cm = configmaps.get(ref.get("name", ""))
        if cm is None:
            if ref.get("optional"):
                continue
            raise ContainerConfigError(f'configmap "{ref.get("name")}" not found')
        prefix = source.get("prefix") or ""
        for key, value in (cm.get("data") or {}).items():
            if _ENV_NAME.match(prefix + key):
                env[prefix + key] = str(value)
    for var in container.get("env") or []:
        name = var.get("name")
        if not name:
            continue
        source = var.get("valueFrom")
        if not source:
            env[name] = expand(str(var.get("value", "")), env)
        elif "fieldRef" in source:
            env[name] = field_value(pod, source["fieldRef"].get("fieldPath", ""), host_ip, pod_ip)
        elif "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            cm = configmaps.get(ref.get("name", ""))
            data = (cm or {}).get("data") or {}
            if ref.get("key") in data:
                env[name] = str(data[ref["key"]])
            elif not ref.get("optional"):
                if cm is None:
                    raise ContainerConfigError(f'configmap "{ref.get("name")}" not found')
                raise ContainerConfigError(
                    f"couldn't find key {ref.get('key')} in ConfigMap {namespace}/{ref['name']}"
                )
        else:
            kinds = ", ".join(sorted(source))
            raise ContainerConfigError(f"env {name}: valueFrom {kinds} is not supported by kubelite yet")
    return env
