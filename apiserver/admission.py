"""Admission that mutates pods on create, as kube-apiserver's plug-ins do. Pure.

DefaultTolerationSeconds: every pod that does not already tolerate the NoExecute taints the node
lifecycle controller puts on a failed node (`node.kubernetes.io/not-ready`,
`node.kubernetes.io/unreachable`) gets a toleration for each, bounded by tolerationSeconds (the
apiserver's `--default-not-ready-toleration-seconds` / `--default-unreachable-toleration-seconds`,
300 by default). So a pod stays on a silent node that long, then the taint manager evicts it and
its controller makes a replacement elsewhere. A pod with its own toleration (a DaemonSet pod, which
tolerates them forever) is left as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TAINT_NODE_NOT_READY = "node.kubernetes.io/not-ready"
TAINT_NODE_UNREACHABLE = "node.kubernetes.io/unreachable"
DEFAULT_TOLERATION_SECONDS = 300


@dataclass(frozen=True)
class DefaultTolerationSeconds:
    """The plug-in's configuration: the seconds of each default toleration."""

    not_ready: int = DEFAULT_TOLERATION_SECONDS
    unreachable: int = DEFAULT_TOLERATION_SECONDS

    def tolerations(self) -> list[dict[str, Any]]:
        return [
            _exists(TAINT_NODE_NOT_READY, self.not_ready),
            _exists(TAINT_NODE_UNREACHABLE, self.unreachable),
        ]


def _exists(key: str, seconds: int) -> dict[str, Any]:
    return {"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": seconds}


def tolerates_noexecute(tolerations: list[Any], key: str) -> bool:
    """Whether some toleration already covers `key:NoExecute` the way the plug-in checks it: same key
    or no key, NoExecute or no effect (operator and value are not looked at, as in Kubernetes)."""
    return any(
        isinstance(t, dict) and t.get("key") in (key, "", None) and t.get("effect") in ("NoExecute", "", None)
        for t in tolerations
    )


def admit_default_toleration_seconds(pod: dict[str, Any], config: DefaultTolerationSeconds) -> None:
    """Add the default not-ready and unreachable tolerations the pod lacks (in place)."""
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return
    tolerations = spec.get("tolerations")
    if tolerations is None:
        tolerations = []
    if not isinstance(tolerations, list):
        return  # validation reports it
    added = [t for t in config.tolerations() if not tolerates_noexecute(tolerations, t["key"])]
    if added:
        spec["tolerations"] = tolerations + added
