"""The back-off between deletions of a node's failed daemon pods (client-go's flowcontrol.Backoff,
kubelite.backoff, as the DaemonSet controller uses it: 1 s doubling to 15 min per DaemonSet and
node), so that a controller fighting a kubelet that keeps rejecting its pod does not loop hot.
Keys are `<DaemonSet uid>/<observedGeneration>/<node>` (failedPodsBackoffKey), so a DaemonSet whose
template is fixed starts a fresh back-off. Pure: the caller passes the time.
"""

from __future__ import annotations

from kubelite.backoff import Backoff
from kubelite.objects import Object

INITIAL = 1.0
MAXIMUM = 900.0


class FailedPodBackoff(Backoff):
    def __init__(self, initial: float = INITIAL, maximum: float = MAXIMUM):
        super().__init__(initial, maximum)


def failed_pods_backoff_key(ds: Object, node: str) -> str:
    """failedPodsBackoffKey: per DaemonSet, generation it last observed, and node."""
    generation = int((ds.get("status") or {}).get("observedGeneration") or 0)
    return f"{ds['metadata'].get('uid')}/{generation}/{node}"
