"""What the Deployment controller knows about Deployments and their ReplicaSets, as Kubernetes'
pkg/controller/deployment/util does: revisions and the annotations that carry them, maxSurge and
maxUnavailable, replica counts, which ReplicaSet is the new one, and proportional scaling. Pure:
functions of plain objects, nothing here reads a cache or writes to the API.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from typing import Any

from controller.deployment.hashing import comparable
from kubelite.objects import Object

log = logging.getLogger(__name__)

REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
REVISION_HISTORY_ANNOTATION = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS_ANNOTATION = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS_ANNOTATION = "deployment.kubernetes.io/max-replicas"
ROLLBACK_TO_ANNOTATION = "deprecated.deployment.rollback.to"
LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"
# Not copied from a Deployment to its ReplicaSets, nor back on a rollback.
ANNOTATIONS_TO_SKIP = frozenset(
    {
        LAST_APPLIED_ANNOTATION,
        REVISION_ANNOTATION,
        REVISION_HISTORY_ANNOTATION,
        DESIRED_REPLICAS_ANNOTATION,
        MAX_REPLICAS_ANNOTATION,
        ROLLBACK_TO_ANNOTATION,
    }
)
MAX_REVISION_HISTORY_CHARS = 2000  # about 100 revisions in revision-history
MAX_INT32 = 2**31 - 1  # progressDeadlineSeconds and revisionHistoryLimit at this value mean "none"

RECREATE = "Recreate"
ROLLING_UPDATE = "RollingUpdate"


# ---------------------------------------------------------------------------------- fields


def spec_replicas(obj: Object | None) -> int:
    """spec.replicas, which the apiserver defaults to 1."""
    value = ((obj or {}).get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def status_count(obj: Object | None, field: str) -> int:
    return int(((obj or {}).get("status") or {}).get(field) or 0)


def annotations_of(obj: Object) -> dict[str, str]:
    """The object's annotations, created if missing, to change in place."""
    meta = obj.setdefault("metadata", {})
    if not isinstance(meta.get("annotations"), dict):
        meta["annotations"] = {}
    return meta["annotations"]


def strategy_type(d: Object) -> str:
    return ((d.get("spec") or {}).get("strategy") or {}).get("type") or ROLLING_UPDATE


def is_rolling_update(d: Object) -> bool:
    return strategy_type(d) == ROLLING_UPDATE


def has_progress_deadline(d: Object) -> bool:
    deadline = (d.get("spec") or {}).get("progressDeadlineSeconds")
    return deadline is not None and int(deadline) != MAX_INT32


def has_revision_history_limit(d: Object) -> bool:
    limit = (d.get("spec") or {}).get("revisionHistoryLimit")
    return limit is not None and int(limit) != MAX_INT32


# ---------------------------------------------------------------------------------- revisions


def revision(obj: Object | None) -> int:
    """The revision annotation; 0 when absent. ValueError when it is not a number."""
    value = (((obj or {}).get("metadata") or {}).get("annotations") or {}).get(REVISION_ANNOTATION)
    return 0 if value is None else int(value)


def _revisions(rss: Iterable[Object | None]) -> list[int]:
    out = []
    for rs in rss:
        if rs is None:
            continue
        try:
            out.append(revision(rs))
        except ValueError:
            log.debug("replica set %s has an unparsable revision, skipped", rs["metadata"].get("name"))
    return out


def max_revision(rss: Iterable[Object | None]) -> int:
    return max(_revisions(rss), default=0)


def last_revision(rss: Iterable[Object | None]) -> int:
    """The second highest revision: the one `rollout undo` goes back to."""
    highest = second = 0
    for v in _revisions(rss):
        if v >= highest:
            highest, second = v, highest
        elif v > second:
            second = v
    return second


def set_deployment_revision(d: Object, value: str) -> bool:
    ann = annotations_of(d)
    if ann.get(REVISION_ANNOTATION) == value:
        return False
    ann[REVISION_ANNOTATION] = value
    return True


def copy_deployment_annotations(d: Object, rs: Object) -> bool:
    """Copy the Deployment's annotations (kubernetes.io/change-cause among them) to the ReplicaSet,
    but for those the controller owns; whether anything changed."""
    ann = annotations_of(rs)
    changed = False
    for key, value in ((d.get("metadata") or {}).get("annotations") or {}).items():
        if key in ANNOTATIONS_TO_SKIP or ann.get(key) == value:
            continue
        ann[key] = value
        changed = True
    return changed


def set_deployment_annotations_to(d: Object, rs: Object) -> None:
    """On a rollback, the Deployment takes the annotations of the ReplicaSet it goes back to, so that
    its change-cause is the one that ReplicaSet was made with."""
    kept = {k: v for k, v in annotations_of(d).items() if k in ANNOTATIONS_TO_SKIP}
    for key, value in ((rs.get("metadata") or {}).get("annotations") or {}).items():
        if key not in ANNOTATIONS_TO_SKIP:
            kept[key] = value
    d["metadata"]["annotations"] = kept


def append_revision_history(history: str, old: str, limit: int = MAX_REVISION_HISTORY_CHARS) -> str | None:
    """revision-history with `old` appended, oldest entries dropped to stay within limit characters;
    None when even that cannot make room."""
    if not history:
        return old
    entries = history.split(",")
    total = len(history) + len(old) + 1
    start = 0
    while total > limit and start < len(entries):
        total -= len(entries[start]) + 1
        start += 1
    if total > limit:
        return None
    return ",".join([*entries[start:], old])


def set_new_replica_set_annotations(
    d: Object, rs: Object, new_revision: str, exists: bool, limit: int = MAX_REVISION_HISTORY_CHARS
) -> bool:
    """Bring the new ReplicaSet's annotations up to date: the Deployment's own, a revision that is the
    highest of all (a ReplicaSet that gets a new revision is being rolled back to, so its old revision
    goes to revision-history), and, on creation, desired-replicas and max-replicas."""
    changed = copy_deployment_annotations(d, rs)
    ann = annotations_of(rs)
    old_revision = ann.get(REVISION_ANNOTATION)
    try:
        old = int(old_revision) if old_revision else 0
        new = int(new_revision)
    except ValueError:
        name = rs["metadata"].get("name")
        log.info("replica set %s: revision %r or %r is not a number", name, old_revision, new_revision)
        return False
    if old < new:
        ann[REVISION_ANNOTATION] = new_revision
        changed = True
        if old_revision is not None:
            history = append_revision_history(ann.get(REVISION_HISTORY_ANNOTATION, ""), old_revision, limit)
            if history is not None:
                ann[REVISION_HISTORY_ANNOTATION] = history
    if not exists:
        replicas = spec_replicas(d)
        changed = set_replicas_annotations(rs, replicas, replicas + max_surge(d)) or changed
    return changed


def int_annotation(rs: Object, key: str) -> int | None:
    value = ((rs.get("metadata") or {}).get("annotations") or {}).get(key)
    try:
        return None if value is None else int(value)
    except ValueError:
        return None


def replicas_annotations_need_update(rs: Object, desired: int, maximum: int) -> bool:
    ann = (rs.get("metadata") or {}).get("annotations") or {}
    return ann.get(DESIRED_REPLICAS_ANNOTATION) != str(desired) or ann.get(MAX_REPLICAS_ANNOTATION) != str(
        maximum
    )


def set_replicas_annotations(rs: Object, desired: int, maximum: int) -> bool:
    if not replicas_annotations_need_update(rs, desired, maximum):
        return False
    ann = annotations_of(rs)
    ann[DESIRED_REPLICAS_ANNOTATION] = str(desired)
    ann[MAX_REPLICAS_ANNOTATION] = str(maximum)
    return True


# ---------------------------------------------------------------------------------- surge and unavailability


def scaled_value(value: Any, total: int, round_up: bool) -> int:
    """An IntOrString against a total: a number as is, a percentage of total rounded up or down."""
    if isinstance(value, bool):
        raise ValueError(f"invalid value for IntOrString: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.endswith("%") and value[:-1].isdigit():
        scaled = int(value[:-1]) * total / 100
        return math.ceil(scaled) if round_up else math.floor(scaled)
    raise ValueError(f"invalid value for IntOrString: invalid type: string is not a percentage: {value!r}")


def resolve_fenceposts(max_surge_value: Any, max_unavailable_value: Any, desired: int) -> tuple[int, int]:
    """(surge, unavailable) for desired replicas; both 0 would stall, so unavailable becomes 1."""
    surge = scaled_value(0 if max_surge_value is None else max_surge_value, desired, True)
    unavailable = scaled_value(0 if max_unavailable_value is None else max_unavailable_value, desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def _fenceposts(d: Object) -> tuple[int, int]:
    rolling = ((d.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {}
    try:
        return resolve_fenceposts(rolling.get("maxSurge"), rolling.get("maxUnavailable"), spec_replicas(d))
    except ValueError:
        return 0, 0  # validation keeps these out; Kubernetes treats them as 0 too


def max_surge(d: Object) -> int:
    return _fenceposts(d)[0] if is_rolling_update(d) else 0


def max_unavailable(d: Object) -> int:
    replicas = spec_replicas(d)
    if not is_rolling_update(d) or replicas == 0:
        return 0
    return min(_fenceposts(d)[1], replicas)


# ---------------------------------------------------------------------------------- counting and ordering


def replica_count(rss: Iterable[Object | None]) -> int:
    """Pods the ReplicaSets ask for (spec.replicas)."""
    return sum(spec_replicas(rs) for rs in rss if rs is not None)


def actual_replica_count(rss: Iterable[Object | None]) -> int:
    return sum(status_count(rs, "replicas") for rs in rss if rs is not None)


def ready_replica_count(rss: Iterable[Object | None]) -> int:
    return sum(status_count(rs, "readyReplicas") for rs in rss if rs is not None)


def available_replica_count(rss: Iterable[Object | None]) -> int:
    return sum(status_count(rs, "availableReplicas") for rs in rss if rs is not None)


def filter_active(rss: Iterable[Object | None]) -> list[Object]:
    """The ReplicaSets that have, or ought to have, pods."""
    return [rs for rs in rss if rs is not None and spec_replicas(rs) > 0]


def by_creation(rs: Object) -> tuple[str, str]:
    """Oldest first; the name breaks ties (ReplicaSetsByCreationTimestamp)."""
    meta = rs.get("metadata") or {}
    return meta.get("creationTimestamp") or "", meta.get("name", "")


def by_revision(rss: Sequence[Object]) -> list[Object]:
    """Lowest revision first, creation time breaking ties and standing in for unparsable revisions."""

    def key(rs: Object) -> tuple[int, tuple[str, str]]:
        try:
            return revision(rs), by_creation(rs)
        except ValueError:
            return -1, by_creation(rs)

    return sorted(rss, key=key)


def by_size_newer(rss: Sequence[Object]) -> list[Object]:
    """Largest first, the newer of two the same size first (ReplicaSetsBySizeNewer)."""
    return sorted(sorted(rss, key=by_creation, reverse=True), key=spec_replicas, reverse=True)


def by_size_older(rss: Sequence[Object]) -> list[Object]:
    """Largest first, the older of two the same size first (ReplicaSetsBySizeOlder)."""
    return sorted(sorted(rss, key=by_creation), key=spec_replicas, reverse=True)


# ---------------------------------------------------------------------------------- new and old ReplicaSets


def find_new_replica_set(d: Object, rss: Sequence[Object]) -> Object | None:
    """The ReplicaSet whose template is the Deployment's (the oldest, should there be several)."""
    wanted = comparable((d.get("spec") or {}).get("template"))
    for rs in sorted(rss, key=by_creation):
        if comparable((rs.get("spec") or {}).get("template")) == wanted:
            return rs
    return None


def find_old_replica_sets(d: Object, rss: Sequence[Object]) -> tuple[list[Object], list[Object]]:
    """(old ReplicaSets that still have replicas, every old ReplicaSet)."""
    olds = all_but(rss, find_new_replica_set(d, rss))
    return [rs for rs in olds if spec_replicas(rs) != 0], olds


def replace_by_uid(rss: Sequence[Object], updated: Object) -> list[Object]:
    """rss with updated in place of the ReplicaSet it is a newer copy of."""
    uid = updated["metadata"].get("uid")
    return [updated if rs["metadata"].get("uid") == uid else rs for rs in rss]


def all_but(rss: Sequence[Object], new: Object | None) -> list[Object]:
    """Every ReplicaSet but the new one: the old ones."""
    new_uid = new["metadata"].get("uid") if new else None
    return [rs for rs in rss if new is None or rs["metadata"].get("uid") != new_uid]


def find_active_or_latest(new_rs: Object | None, old_rss: Sequence[Object]) -> Object | None:
    """The only active ReplicaSet, or the newest when none is active; None when several are active
    (then scaling must be proportional)."""
    if new_rs is None and not old_rss:
        return None
    olds = sorted(old_rss, key=by_creation, reverse=True)
    active = filter_active([*olds, new_rs])
    if len(active) == 1:
        return active[0]
    if not active:
        return new_rs if new_rs is not None else olds[0]
    return None


def new_rs_new_replicas(d: Object, all_rss: Sequence[Object | None], new_rs: Object) -> int:
    """How many replicas the new ReplicaSet may have now: for a rolling update as many as fit under
    replicas + maxSurge, never more than replicas; for Recreate all of them."""
    replicas = spec_replicas(d)
    if not is_rolling_update(d):
        return replicas
    max_total = replicas + max_surge(d)
    current = replica_count(all_rss)
    if current >= max_total:
        return spec_replicas(new_rs)
    return spec_replicas(new_rs) + min(max_total - current, replicas - spec_replicas(new_rs))


def is_saturated(d: Object, rs: Object | None) -> bool:
    """The new ReplicaSet holds every replica, both by its own and by the Deployment's count, and all
    of them are available."""
    if rs is None:
        return False
    desired = int_annotation(rs, DESIRED_REPLICAS_ANNOTATION)
    replicas = spec_replicas(d)
    return (
        spec_replicas(rs) == replicas
        and desired == replicas
        and status_count(rs, "availableReplicas") == replicas
    )


def is_scaling_event(d: Object, all_rss: Sequence[Object | None]) -> bool:
    """spec.replicas changed since the active ReplicaSets last heard it (desired-replicas)."""
    replicas = spec_replicas(d)
    for rs in filter_active(all_rss):
        desired = int_annotation(rs, DESIRED_REPLICAS_ANNOTATION)
        if desired is not None and desired != replicas:
            return True
    return False
