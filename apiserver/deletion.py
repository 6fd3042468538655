"""What a DELETE does to an object before the store is touched: the cascade policy it asks for,
the garbage collector's finalizers that policy puts on the object, and the graceful-deletion
marks. Pure.

Kubernetes' three cascades (`kubectl delete --cascade=background|foreground|orphan`):
- Background: the object goes at once; the garbage collector then deletes its dependents.
- Foreground: the object stays, marked deleting, with the `foregroundDeletion` finalizer until
  the garbage collector has deleted the dependents that block it.
- Orphan: the object stays with the `orphan` finalizer until the garbage collector has removed
  the object from its dependents' ownerReferences.
"""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass

from apiserver.errors import FieldError, invalid, not_supported
from apiserver.meta import JSONObject, rfc3339

ORPHAN_FINALIZER = "orphan"
FOREGROUND_FINALIZER = "foregroundDeletion"
BACKGROUND, FOREGROUND, ORPHAN = "Background", "Foreground", "Orphan"
POLICIES = [FOREGROUND, BACKGROUND, ORPHAN]


@dataclass
class DeleteOptions:
    grace_period_seconds: int | None = None
    uid: str | None = None
    resource_version: str | None = None
    propagation_policy: str | None = None
    orphan_dependents: bool | None = None
    dry_run: bool = False

    def validate(self) -> list[FieldError]:
        """ValidateDeleteOptions, with the real server's field paths."""
        errs = []
        if self.propagation_policy is not None and self.propagation_policy not in POLICIES:
            errs.append(not_supported("propagationPolicy", self.propagation_policy, POLICIES))
        if self.propagation_policy is not None and self.orphan_dependents is not None:
            errs.append(
                invalid(
                    "propagationPolicy",
                    self.propagation_policy,
                    "orphanDependents and deletionPropagation cannot be both set",
                )
            )
        return errs


def cascade(options: DeleteOptions, finalizers: list[str], default: str) -> str:
    """The policy in force: asked for, or kept from an earlier delete, or the kind's default."""
    if options.propagation_policy is not None:
        return options.propagation_policy
    if options.orphan_dependents is not None:
        return ORPHAN if options.orphan_dependents else BACKGROUND
    if ORPHAN_FINALIZER in finalizers:
        return ORPHAN
    if FOREGROUND_FINALIZER in finalizers:
        return FOREGROUND
    return default


def with_cascade_finalizer(finalizers: list[str], policy: str) -> list[str]:
    """The finalizers with exactly the one the policy needs (none for Background)."""
    kept = [f for f in finalizers if f not in (ORPHAN_FINALIZER, FOREGROUND_FINALIZER)]
    if policy == ORPHAN:
        kept.append(ORPHAN_FINALIZER)
    elif policy == FOREGROUND:
        kept.append(FOREGROUND_FINALIZER)
    return kept


def begin_deletion(
    obj: JSONObject, grace: int, finalizers: list[str], now: dt.datetime, tracks_generation: bool
) -> JSONObject | None:
    """The object marked as being deleted (graceful, or held by finalizers), or None when a
    repeated delete changes nothing. A repeated delete may only shorten the grace period."""
    new = copy.deepcopy(obj)
    meta = new["metadata"]
    changed = False
    if list(meta.get("finalizers") or []) != finalizers:
        if finalizers:
            meta["finalizers"] = finalizers
        else:
            meta.pop("finalizers", None)
        changed = True
    if meta.get("deletionTimestamp"):
        current = meta.get("deletionGracePeriodSeconds")
        if current is not None and grace < int(current):
            meta["deletionTimestamp"] = rfc3339(now + dt.timedelta(seconds=grace))
            meta["deletionGracePeriodSeconds"] = grace
            changed = True
        return new if changed else None
    meta["deletionTimestamp"] = rfc3339(now + dt.timedelta(seconds=grace))
    meta["deletionGracePeriodSeconds"] = grace
    if tracks_generation:
        meta["generation"] = int(meta.get("generation") or 1) + 1
    return new
