"""Progress of a rollout against spec.progressDeadlineSeconds (Kubernetes' progress.go): the
Progressing condition moves from NewReplicaSetCreated/FoundNewReplicaSet through ReplicaSetUpdated
(lastUpdateTime renewed on every sign of progress) to NewReplicaSetAvailable, or to
ProgressDeadlineExceeded once no progress was seen for longer than the deadline. A rollout that is
neither complete nor timed out is queued again for when its deadline passes, so that a stuck rollout
is reported without anything else happening to it. `rollout_status` and `progress_check_after` are
the pure decisions; the time comes from the controller's injected clock.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

from controller.deployment.status import (
    NEW_RS_AVAILABLE,
    PROGRESSING,
    REPLICA_FAILURE,
    REPLICA_SET_UPDATED,
    TIMED_OUT,
    calculate_status,
    deployment_complete,
    deployment_progressing,
    deployment_timed_out,
    get_condition,
    new_condition,
    remove_condition,
    set_condition,
)
from controller.deployment.sync import SyncMixin
from controller.deployment.util import has_progress_deadline
from kubelite.objects import Object, key_of, parse_rfc3339

log = logging.getLogger(__name__)


def replica_failures(all_rss: Sequence[Object | None], new_rs: Object | None) -> list[dict[str, str]]:
    """ReplicaFailure conditions of the ReplicaSets as Deployment conditions, the new one's first."""

    def of(rs: Object | None) -> list[dict[str, str]]:
        out = []
        for c in ((rs or {}).get("status") or {}).get("conditions") or []:
            if c.get("type") == REPLICA_FAILURE:
                since = c.get("lastTransitionTime")
                out.append(
                    {
                        "type": REPLICA_FAILURE,
                        "status": c.get("status"),
                        "lastUpdateTime": since,
                        "lastTransitionTime": since,
                        "reason": c.get("reason"),
                        "message": c.get("message"),
                    }
                )
        return out

    return of(new_rs) or [c for rs in all_rss for c in of(rs)]


def rollout_status(
    all_rss: Sequence[Object | None], new_rs: Object | None, d: Object, now: dt.datetime
) -> Object:
    """The status of a Deployment being rolled out: calculate_status plus the Progressing condition
    (unless the last rollout completed and nothing changed since) and any ReplicaFailure."""
    status = calculate_status(all_rss, new_rs, d, now)
    if not has_progress_deadline(d):
        remove_condition(status, PROGRESSING)
    current = get_condition(d.get("status") or {}, PROGRESSING)
    rs_name = new_rs["metadata"]["name"] if new_rs is not None else None
    name = d["metadata"]["name"]
    complete_before = (
        int(status.get("replicas") or 0) == int(status.get("updatedReplicas") or 0)
        and current is not None
        and current.get("reason") == NEW_RS_AVAILABLE
    )
    if has_progress_deadline(d) and not complete_before:
        if deployment_complete(d, status):
            message = (
                f'ReplicaSet "{rs_name}" has successfully progressed.'
                if rs_name
                else f'Deployment "{name}" has successfully progressed.'
            )
            set_condition(status, new_condition(PROGRESSING, "True", NEW_RS_AVAILABLE, message, now))
        elif deployment_progressing(d, status):
            message = (
                f'ReplicaSet "{rs_name}" is progressing.'
                if rs_name
                else f'Deployment "{name}" is progressing.'
            )
            cond = new_condition(PROGRESSING, "True", REPLICA_SET_UPDATED, message, now)
            # Progress renews lastUpdateTime even when the reason stays the same, which set_condition
            # would not do; an already true condition keeps its lastTransitionTime.
            if current is not None:
                if current.get("status") == "True":
                    cond["lastTransitionTime"] = current.get("lastTransitionTime")
                remove_condition(status, PROGRESSING)
            set_condition(status, cond)
        elif deployment_timed_out(d, status, now):
            message = (
                f'ReplicaSet "{rs_name}" has timed out progressing.'
                if rs_name
                else f'Deployment "{name}" has timed out progressing.'
            )
            set_condition(status, new_condition(PROGRESSING, "False", TIMED_OUT, message, now))
    failures = replica_failures(all_rss, new_rs)
    if failures:
        set_condition(status, failures[0])
    else:
        remove_condition(status, REPLICA_FAILURE)
    return status


def progress_check_after(d: Object, status: Object, now: dt.datetime) -> float | None:
    """Seconds until the rollout should be looked at again for its deadline, or None when there is no
    deadline to watch: none set, no Progressing condition, complete, or timed out. A second late
    rather than a moment early; and never less than a second, so that a deadline about to pass is not
    polled in a hot loop (Kubernetes polls it rate-limited)."""
    cond = get_condition(status, PROGRESSING)
    if not has_progress_deadline(d) or cond is None or not cond.get("lastUpdateTime"):
        return None
    if deployment_complete(d, status) or cond.get("reason") == TIMED_OUT:
        return None
    deadline = parse_rfc3339(cond["lastUpdateTime"]) + dt.timedelta(
        seconds=int(d["spec"]["progressDeadlineSeconds"])
    )
    return max((deadline - now).total_seconds(), 0.0) + 1


class ProgressMixin(SyncMixin):
    async def sync_rollout_status(
        self, all_rss: Sequence[Object | None], new_rs: Object | None, d: Object
    ) -> None:
        """Write the rollout's status, and queue the Deployment again for its progress deadline."""
        now = self.clock()
        status = rollout_status(all_rss, new_rs, d, now)
        await self.persist_status(d, status)
        after = progress_check_after(d, status, now)
        if after is not None:
            log.debug("deployment %s: progress check in %.0fs", key_of(d), after)
            self.queue.add_after(key_of(d), after)
