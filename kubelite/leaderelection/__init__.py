"""Leader election on a coordination.k8s.io Lease, as client-go's `tools/leaderelection`: pure
decisions (`record`), the flags and their validation (`config`), and the async elector (`elector`).
"""

from kubelite.leaderelection.config import LeaderElectionConfig, add_flags, config_from_flags, go_bool
from kubelite.leaderelection.elector import LeaderElector, LeaseLock, SystemClock
from kubelite.leaderelection.record import LeaderElectionRecord, Observed, identity

__all__ = [
    "LeaderElectionConfig",
    "LeaderElectionRecord",
    "LeaderElector",
    "LeaseLock",
    "Observed",
    "SystemClock",
    "add_flags",
    "config_from_flags",
    "go_bool",
    "identity",
]
