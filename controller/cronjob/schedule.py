"""When a CronJob should run, as cronjob_controllerv2 decides it: the most recent scheduled time
that has passed and not been run, whether many were missed, and how long to wait until the next.
Pure: the CronJob, the parsed schedule and `now` in, times out.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from kubelite.cron import Schedule
from kubelite.objects import Object, parse_rfc3339

# the requeue lands this long after the scheduled time, so a slightly early timer still finds it due
NEXT_SCHEDULE_DELTA = 0.1
# more missed start times than this means a clock or controller problem, not a backlog to run
TOO_MANY_MISSED = 100


class Missed(enum.Enum):
    NONE = "none"
    FEW = "few"
    MANY = "many"


class InvalidSchedule(Exception):
    """A schedule that parses but can never run twice (`0 0 30 2 *`): Kubernetes' wording."""


@dataclass(frozen=True)
class Due:
    earliest: dt.datetime  # lastScheduleTime, or the CronJob's creation time
    most_recent: dt.datetime | None  # the latest scheduled time <= now after earliest, if any
    missed: Missed


def _time(value: str | None) -> dt.datetime | None:
    return parse_rfc3339(value) if value else None


def earliest_time(cronjob: Object) -> dt.datetime:
    """The point the schedule is counted from: the last scheduled run, else the creation time."""
    status = cronjob.get("status") or {}
    meta = cronjob.get("metadata") or {}
    last = _time(status.get("lastScheduleTime"))
    created = _time(meta.get("creationTimestamp"))
    return last or created or dt.datetime.fromtimestamp(0, dt.UTC)


def most_recent_schedule_time(
    cronjob: Object, now: dt.datetime, schedule: Schedule, include_starting_deadline: bool
) -> Due:
    """mostRecentScheduleTime: only the latest missed time is kept (a backlog is never replayed);
    with startingDeadlineSeconds, times older than the deadline do not count at all. The number
    missed is estimated from the gap between two consecutive runs, as Kubernetes does."""
    earliest = earliest_time(cronjob)
    deadline = (cronjob.get("spec") or {}).get("startingDeadlineSeconds")
    if include_starting_deadline and deadline is not None:
        scheduling_deadline = now - dt.timedelta(seconds=int(deadline))
        if scheduling_deadline > earliest:
            earliest = scheduling_deadline
    t1 = schedule.next(earliest)
    t2 = schedule.next(t1) if t1 is not None else None
    if t1 is not None and now < t1:
        return Due(earliest, None, Missed.NONE)
    if t1 is not None and t2 is not None and now < t2:
        return Due(earliest, t1, Missed.NONE)
    if t1 is None or t2 is None or round((t2 - t1).total_seconds()) < 1:
        raise InvalidSchedule("time difference between two schedules is less than 1 second")
    between = round((t2 - t1).total_seconds())
    elapsed = int((now - t1).total_seconds())
    missed_count = elapsed // between + 1
    most_recent: dt.datetime | None = None
    t: dt.datetime | None = schedule.next(t1 + dt.timedelta(seconds=(missed_count - 2) * between))
    while t is not None and t <= now:
        most_recent = t
        t = schedule.next(t)
    missed = Missed.MANY if missed_count > TOO_MANY_MISSED else Missed.FEW
    return Due(earliest, most_recent, missed)


def next_schedule_delay(cronjob: Object, now: dt.datetime, schedule: Schedule) -> float | None:
    """nextScheduleTimeDuration: seconds until the first scheduled time after the most recent one
    (plus a little), or None when the schedule never fires again."""
    try:
        due = most_recent_schedule_time(cronjob, now, schedule, include_starting_deadline=False)
        base = due.most_recent or (due.earliest if due.missed is Missed.NONE else now)
    except InvalidSchedule:
        base = now
    upcoming = schedule.next(base)
    if upcoming is None:
        return None
    return (upcoming - now).total_seconds() + NEXT_SCHEDULE_DELTA
