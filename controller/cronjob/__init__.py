"""The CronJob controller: `controller.py` does the IO; `schedule.py` (when to run) and `jobs.py`
(what to create, what to trim) decide, purely."""

from controller.cronjob.controller import CronJobController

__all__ = ["CronJobController"]
