"""Reading and writing kubeconfig files the way kubectl expects them.

Writing merges one cluster/user/context into an existing file and makes it current, as
`kind` does, so that kubectl works at once.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml


def default_path() -> Path:
    env = os.environ.get("KUBECONFIG", "")
    if env:
        return Path(env.split(os.pathsep)[0])
    return Path.home() / ".kube" / "config"


def load_server(path: str | Path) -> tuple[str, str | None]:
    """(server URL, bearer token or None) of the current context."""
    cfg = yaml.safe_load(Path(path).read_text()) or {}
    current = cfg.get("current-context")
    contexts = {c["name"]: c["context"] for c in cfg.get("contexts") or []}
    clusters = {c["name"]: c["cluster"] for c in cfg.get("clusters") or []}
    users = {u["name"]: u.get("user") or {} for u in cfg.get("users") or []}
    ctx = contexts.get(current) or next(iter(contexts.values()), None)
    if ctx is None:
        raise SystemExit(f"error: kubeconfig {path} has no context")
    server = clusters[ctx["cluster"]]["server"]
    token = users.get(ctx.get("user", ""), {}).get("token")
    return server, token


def merged(cfg: dict[str, Any] | None, name: str, server: str) -> dict[str, Any]:
    """cfg with cluster, user and context `name` set to server and made current."""
    cfg = dict(cfg or {})
    cfg.setdefault("apiVersion", "v1")
    cfg.setdefault("kind", "Config")
    cfg.setdefault("preferences", {})

    def upsert(section: str, entry: dict[str, Any]) -> None:
        items = [e for e in cfg.get(section) or [] if e.get("name") != name]
        items.append(entry)
        cfg[section] = items

    upsert("clusters", {"name": name, "cluster": {"server": server}})
    upsert("users", {"name": name, "user": {}})
    upsert("contexts", {"name": name, "context": {"cluster": name, "user": name}})
    cfg["current-context"] = name
    return cfg


def without(cfg: dict[str, Any] | None, name: str) -> dict[str, Any]:
    cfg = dict(cfg or {})
    for section in ("clusters", "users", "contexts"):
        cfg[section] = [e for e in cfg.get(section) or [] if e.get("name") != name]
    if cfg.get("current-context") == name:
        cfg["current-context"] = ""
    return cfg


def write_context(name: str, server: str, path: Path | None = None) -> Path:
    path = path or default_path()
    existing = yaml.safe_load(path.read_text()) if path.exists() else None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(merged(existing, name, server), sort_keys=False))
    path.chmod(0o600)
    return path


def remove_context(name: str, path: Path | None = None) -> None:
    path = path or default_path()
    if path.exists():
        path.write_text(yaml.safe_dump(without(yaml.safe_load(path.read_text()), name), sort_keys=False))
