"""The scheduler's cache (kube-scheduler's): one NodeInfo per node, kept up to date from the pod and
node informers' events and from the scheduler's own bindings, so that placing a pod costs the same
however many pods the cluster runs (rebuilding it from every pod for every decision made scheduling
N pods cost N squared).

A pod the scheduler has bound but the informer has not yet shown bound is *assumed*: it counts on
its node at once, so two pods in quick succession are not both given room that only one of them
has; when the informer shows it bound (or deleted) the assumption ends. Pure: fed by handlers.
"""

from __future__ import annotations

from kubelite.objects import Object, is_pod_finished
from scheduler.predicates import NodeInfo


def _uid(pod: Object) -> str:
    return str(pod.get("metadata", {}).get("uid", ""))


class SchedulerCache:
    def __init__(self) -> None:
        self.nodes: dict[str, NodeInfo] = {}
        self._placed: dict[str, str] = {}  # pod uid -> node it counts on
        self._on: dict[str, dict[str, Object]] = {}  # node -> its pods by uid, known node or not
        self.assumed: dict[str, str] = {}  # pod uid -> node, bound by us, not yet seen bound

    # ------------------------------------------------------------------ nodes

    def set_node(self, node: Object) -> None:
        name = node["metadata"]["name"]
        info = self.nodes.get(name)
        if info is None:  # its pods may have been listed before it
            self.nodes[name] = NodeInfo(node, list(self._on.get(name, {}).values()))
        else:
            info.node = node

    def remove_node(self, name: str) -> None:
        self.nodes.pop(name, None)

    # ------------------------------------------------------------------ pods

    def _place(self, pod: Object, node: str | None) -> None:
        uid = _uid(pod)
        previous = self._placed.pop(uid, None)
        if previous is not None:
            self._on.get(previous, {}).pop(uid, None)
            if previous in self.nodes:
                self.nodes[previous].remove(uid)
        if node is not None:
            self._placed[uid] = node
            self._on.setdefault(node, {})[uid] = pod
            if node in self.nodes:
                self.nodes[node].add(pod)

    def set_pod(self, pod: Object) -> None:
        """A pod as the informer shows it now."""
        uid = _uid(pod)
        node = pod.get("spec", {}).get("nodeName")
        if node:
            self.assumed.pop(uid, None)
        elif uid in self.assumed:
            return  # bound by us; the informer will catch up
        terminal = is_pod_finished(pod)
        self._place(pod, node if node and not terminal else None)

    def remove_pod(self, pod: Object) -> None:
        self.assumed.pop(_uid(pod), None)
        self._place(pod, None)

    def assume(self, pod: Object, node: str) -> None:
        """Count a pod on the node it was just bound to."""
        self.assumed[_uid(pod)] = node
        self._place(pod, node)

    def forget(self, pod: Object) -> None:
        """A binding that failed: the pod counts nowhere until it is bound."""
        self.remove_pod(pod)
