"""Discovery documents (`/version`, `/api`, `/apis`, `/api/v1`, `/apis/<g>/<v>`) and the
minimal OpenAPI v3 documents kubectl's validation needs (COMPAT A1, A3), all built from
the resource table. Legacy (non-aggregated) discovery only: kubectl falls back to it. Pure.
"""

from __future__ import annotations

import hashlib
import json
import platform
from typing import Any

from apiserver import errors
from apiserver.meta import JSONObject
from apiserver.resources import ResourceDef, ResourceTable

KUBERNETES_MAJOR = "1"
KUBERNETES_MINOR = "37"
GIT_VERSION = "v1.37.0"


def version_info() -> JSONObject:
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)
    return {
        "major": KUBERNETES_MAJOR,
        "minor": KUBERNETES_MINOR,
        "gitVersion": GIT_VERSION,
        "gitCommit": "kubelite",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": f"python{platform.python_version()}",
        "compiler": "cpython",
        "platform": f"linux/{arch}",
    }


def api_versions(server_address: str) -> JSONObject:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _group(table: ResourceTable, group: str) -> JSONObject:
    versions = [
        {"groupVersion": f"{group}/{v}", "version": v} for g, v in table.group_versions() if g == group
    ]
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": versions,
        "preferredVersion": versions[0],
    }


def api_groups(table: ResourceTable) -> JSONObject:
    groups = []
    for group in dict.fromkeys(g for g, _v in table.group_versions() if g):
        entry = _group(table, group)
        del entry["kind"], entry["apiVersion"]
        groups.append(entry)
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(table: ResourceTable, group: str) -> JSONObject | None:
    if not any(g == group for g, _v in table.group_versions()):
        return None
    return _group(table, group)


def _resource_entries(rd: ResourceDef) -> list[JSONObject]:
    entry: JSONObject = {
        "name": rd.plural,
        "singularName": rd.singular,
        "namespaced": rd.namespaced,
        "kind": rd.kind,
        "verbs": list(rd.verbs),
    }
    if rd.short_names:
        entry["shortNames"] = list(rd.short_names)
    if rd.categories:
        entry["categories"] = list(rd.categories)
    entries = [entry]
    for sub in rd.subresources:
        sub_entry: JSONObject = {
            "name": f"{rd.plural}/{sub.name}",
            "singularName": "",
            "namespaced": rd.namespaced,
            "kind": sub.kind,
            "verbs": list(sub.verbs),
        }
        if sub.group is not None:
            sub_entry["group"] = sub.group
            sub_entry["version"] = sub.version
        entries.append(sub_entry)
    return entries


def resource_list(table: ResourceTable, group: str, version: str) -> JSONObject | None:
    resources = list(table.in_group_version(group, version))
    if not resources:
        return None
    entries: list[JSONObject] = []
    for rd in resources:
        entries.extend(_resource_entries(rd))
    group_version = f"{group}/{version}" if group else version
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": entries,
    }


# ---------------------------------------------------------------------------- OpenAPI v3


def openapi_path_key(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def openapi_document(table: ResourceTable, group: str, version: str) -> JSONObject | None:
    """Paths whose PATCH declares its GVK and the fieldValidation parameter: enough for kubectl
    to trust server-side validation and send `fieldValidation=Strict`."""
    resources = [rd for rd in table.in_group_version(group, version) if "patch" in rd.verbs]
    if not resources:
        return None
    base = f"/apis/{group}/{version}" if group else f"/api/{version}"
    params = [
        {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
        {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
        {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
    ]
    paths: dict[str, Any] = {}
    for rd in resources:
        path = (
            f"{base}/namespaces/{{namespace}}/{rd.plural}/{{name}}"
            if rd.namespaced
            else f"{base}/{rd.plural}/{{name}}"
        )
        gvk = {"group": group, "version": version, "kind": rd.kind}
        paths[path] = {
            "patch": {
                "operationId": f"patch{rd.kind}",
                "x-kubernetes-group-version-kind": gvk,
                "x-kubernetes-action": "patch",
                "parameters": params,
                "responses": {"200": {"description": "OK"}},
            },
            "put": {
                "operationId": f"replace{rd.kind}",
                "x-kubernetes-group-version-kind": gvk,
                "x-kubernetes-action": "put",
                "parameters": params,
                "responses": {"200": {"description": "OK"}},
            },
        }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": GIT_VERSION},
        "paths": paths,
        "components": {"schemas": {}},
    }


def document_hash(document: JSONObject) -> str:
    return hashlib.sha512(json.dumps(document, sort_keys=True).encode()).hexdigest()[:64].upper()


def openapi_index(table: ResourceTable) -> JSONObject:
    paths = {}
    for group, version in table.group_versions():
        document = openapi_document(table, group, version)
        if document is None:
            continue
        key = openapi_path_key(group, version)
        paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={document_hash(document)}"}
    return {"paths": paths}


def document(table: ResourceTable, server_address: str, path: str) -> JSONObject | None:
    """The discovery or OpenAPI document a GET of path asks for; None when path is not one (it may
    name a resource); a 404 for a discovery path of something not served."""
    if path == "/version":
        return version_info()
    if path == "/api":
        return api_versions(server_address)
    if path == "/apis":
        return api_groups(table)
    if path == "/openapi/v3":
        return openapi_index(table)
    parts = [p for p in path.split("/") if p]
    found: JSONObject | None
    if path.startswith("/openapi/v3/"):
        rest = parts[2:]
        if rest[:1] == ["api"] and len(rest) == 2:
            found = openapi_document(table, "", rest[1])
        elif rest[:1] == ["apis"] and len(rest) == 3:
            found = openapi_document(table, rest[1], rest[2])
        else:
            found = None
    elif len(parts) == 2 and parts[0] == "api":
        found = resource_list(table, "", parts[1])
    elif len(parts) == 2 and parts[0] == "apis":
        found = api_group(table, parts[1])
    elif len(parts) == 3 and parts[0] == "apis":
        found = resource_list(table, parts[1], parts[2])
    else:
        return None
    if found is None:
        raise errors.not_found_path()
    return found
