"""batch/v1 Jobs in the controller-manager: the Job controller and the TTL-after-finished
controller that deletes finished Jobs."""

from controller.job.controller import JobController
from controller.job.ttl import TTLAfterFinishedController

__all__ = ["JobController", "TTLAfterFinishedController"]
