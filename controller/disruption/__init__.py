"""The disruption controller (PodDisruptionBudget status): `status` decides, `controller` syncs."""

from controller.disruption.controller import DisruptionController

__all__ = ["DisruptionController"]
