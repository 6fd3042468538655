"""The DaemonSet controller: one daemon pod on every eligible node, placed by the scheduler through
the node affinity it sets, rolled out node by node, with its history in ControllerRevisions.

`placement` decides where pods belong and builds them, `rolling` takes rolling-update steps,
`status` counts, `backoff` paces the replacement of failed pods (all pure); `controller` does the IO.
"""

from controller.daemonset.controller import DaemonSetController

__all__ = ["DaemonSetController"]
