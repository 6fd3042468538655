"""Node failure: the node lifecycle controller (health monitor and condition taints) and the taint
manager that evicts pods from NoExecute-tainted nodes."""

from controller.nodelifecycle.health import is_stale, last_heartbeat, unknown_conditions
from controller.nodelifecycle.monitor import NodeLifecycleController
from controller.nodelifecycle.tainteviction import TaintEvictionController

__all__ = [
    "NodeLifecycleController",
    "TaintEvictionController",
    "is_stale",
    "last_heartbeat",
    "unknown_conditions",
]
