"""`pods/<name>/eviction`: a pod deleted only if no PodDisruptionBudget says no (Kubernetes'
pkg/registry/core/pod/storage/eviction.go), as `kubectl drain` uses it.

The decision is pure (`plan_eviction`, `check_and_decrement`): a terminal, pending or already
terminating pod is deleted without looking at budgets; a pod covered by more than one budget is a
500; a not-ready pod passes when its budget's unhealthyPodEvictionPolicy is AlwaysAllow, or the
budget is healthy without it (IfHealthyBudget); any other covered pod takes one of the budget's
disruptionsAllowed, or is refused with 429 TooManyRequests. The handler does the IO in the order
Kubernetes does: read the pod, list the namespace's budgets, decrement the budget's status (the
registry's guarded read-modify-write, so two evictions never spend one disruption twice), mark
the pod with a DisruptionTarget condition, delete it with the Eviction's deleteOptions.
Touches: the store, through the registry.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from apiserver import errors
from apiserver.deletion import DeleteOptions
from apiserver.errors import APIError, GroupResource
from apiserver.meta import JSONObject, rfc3339
from kubelite import resources
from kubelite.disruptionbudget import ALWAYS_ALLOW, covers, update_disruption_allowed_condition
from kubelite.objects import get_condition, is_pod_ready

if TYPE_CHECKING:
    from apiserver.handlers import APIHandlers
    from apiserver.registry import Registry
    from apiserver.request_info import RequestInfo
    from apiserver.resources import ResourceDef

SUCCESS_CREATED = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}
DISRUPTION_BUDGET_CAUSE = "DisruptionBudget"
VIOLATION = "Cannot evict pod as it would violate the pod's disruption budget."
MULTIPLE_BUDGETS = (
    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
)
# more entries than this in status.disruptedPods: the controller is not keeping up, refuse
MAX_DISRUPTED_POD_SIZE = 2000
EVICTION_RETRIES = 20
PDB_RESOURCE = GroupResource("policy", "poddisruptionbudget")


@dataclass(eq=False)
class TooManyRequests(APIError):
    """429 TooManyRequests (errors.NewTooManyRequests); a Retry-After header when it suggests one."""

    def to_status(self) -> dict[str, Any]:
        status = super().to_status()
        status["reason"] = "TooManyRequests"
        return status


def too_many_requests(cause: str, retry_after: int = 0) -> APIError:
    details: dict[str, Any] = {"causes": [{"reason": DISRUPTION_BUDGET_CAUSE, "message": cause}]}
    headers = {}
    if retry_after:
        details["retryAfterSeconds"] = retry_after
        headers["Retry-After"] = str(retry_after)
    return TooManyRequests(429, None, VIOLATION, details, headers)


def still_processing(budget: str) -> APIError:
    """The budget's status is not yet for its current spec (or a pinned delete raced): retry soon."""
    return too_many_requests(f"The disruption budget {budget} is still being processed by the server.", 10)


def conflicts_timeout(budget: str) -> APIError:
    message = f'Timeout: couldn\'t update PodDisruptionBudget "{budget}" due to conflicts'
    return APIError(504, errors.Reason.TIMEOUT, message, {"retryAfterSeconds": 10})


# ---------------------------------------------------------------------------------------------- pure


def can_ignore_budgets(pod: JSONObject) -> bool:
    """canIgnorePDB: a pod that is finished, pending or already terminating disrupts nothing more."""
    phase = (pod.get("status") or {}).get("phase")
    return phase in ("Succeeded", "Failed", "Pending") or bool(
        (pod.get("metadata") or {}).get("deletionTimestamp")
    )


def should_pin_resource_version(pod: JSONObject) -> bool:
    """shouldEnforceResourceVersion: delete only the version judged, lest the pod turn ready meanwhile."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not (pod.get("metadata") or {}).get("deletionTimestamp")


@dataclass(frozen=True)
class EvictionPlan:
    """What evicting a pod takes: which budget to spend a disruption of (if any), and whether the
    delete is pinned to the resourceVersion the decision was made on."""

    budget: str | None = None
    decrement: bool = False
    pin_resource_version: bool = False


def plan_eviction(pod: JSONObject, budgets: list[JSONObject]) -> EvictionPlan:
    """The eviction of pod under its namespace's budgets; a 500 when more than one covers it."""
    if can_ignore_budgets(pod):
        return EvictionPlan(pin_resource_version=should_pin_resource_version(pod))
    covering = [b for b in budgets if covers(b, pod)]
    if len(covering) > 1:
        raise APIError(500, None, MULTIPLE_BUDGETS)
    if not covering:
        return EvictionPlan()
    budget = covering[0]
    name = str(budget["metadata"]["name"])
    if not is_pod_ready(pod):
        spec, status = budget.get("spec") or {}, budget.get("status") or {}
        current, desired = int(status.get("currentHealthy") or 0), int(status.get("desiredHealthy") or 0)
        # an unready pod counts toward no budget: deleting it spends no disruption
        if spec.get("unhealthyPodEvictionPolicy") == ALWAYS_ALLOW or (current >= desired > 0):
            return EvictionPlan(budget=name, pin_resource_version=True)
    return EvictionPlan(budget=name, decrement=True)


def check_and_decrement(
    pdb: JSONObject, pod_name: str, now: dt.datetime, dry_run: bool = False
) -> JSONObject:
    """The budget with one disruption spent on pod_name (recorded in disruptedPods with the time),
    or the error that refuses it."""
    name = str(pdb["metadata"]["name"])
    status = pdb.setdefault("status", {})
    generation = int(pdb["metadata"].get("generation") or 0)
    if int(status.get("observedGeneration") or 0) < generation:
        raise still_processing(name)
    allowed = int(status.get("disruptionsAllowed") or 0)
    if allowed < 0:
        raise errors.forbidden_error(PDB_RESOURCE, name, "pdb disruptions allowed is negative")
    if len(status.get("disruptedPods") or {}) > MAX_DISRUPTED_POD_SIZE:
        raise errors.forbidden_error(
            PDB_RESOURCE,
            name,
            "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
        )
    if allowed == 0:
        desired, current = int(status.get("desiredHealthy") or 0), int(status.get("currentHealthy") or 0)
        raise too_many_requests(
            f"The disruption budget {name} needs {desired} healthy pods and has {current} currently"
        )
    status["disruptionsAllowed"] = allowed - 1
    if allowed - 1 == 0:
        update_disruption_allowed_condition(status, now)
    if not dry_run:
        status["disruptedPods"] = {**(status.get("disruptedPods") or {}), pod_name: rfc3339(now)}
    return pdb


def with_disruption_target(pod: JSONObject, now: dt.datetime) -> JSONObject:
    """The pod with condition DisruptionTarget=True (reason EvictionByEvictionAPI), as Kubernetes
    marks a pod it is about to evict."""
    status = pod.setdefault("status", {})
    old = get_condition(pod, "DisruptionTarget")
    since = old.get("lastTransitionTime") if old and old.get("status") == "True" else None
    condition = {
        "type": "DisruptionTarget", "status": "True", "lastProbeTime": None,
        "lastTransitionTime": since or rfc3339(now), "reason": "EvictionByEvictionAPI",
        "message": "Eviction API: evicting",
    }  # fmt: skip
    others = [c for c in status.get("conditions") or [] if c.get("type") != "DisruptionTarget"]
    status["conditions"] = [*others, condition]
    return pod


# ---------------------------------------------------------------------------------------------- IO


class EvictionHandler:
    """`pods/<name>/eviction`: POST an Eviction (policy/v1 or v1beta1) to delete the pod within its
    disruption budget."""

    async def handle(
        self, api: APIHandlers, request: web.Request, rd: ResourceDef, info: RequestInfo
    ) -> web.StreamResponse:
        if request.method != "POST":
            raise errors.method_not_supported()
        eviction = await api.read_body(request)
        if not isinstance(eviction, dict):
            raise errors.bad_request("the body of the request must be an Eviction")
        if (eviction.get("metadata") or {}).get("name") != info.name:
            raise errors.bad_request("name in URL does not match name in Eviction object")
        options = api.delete_options(request, eviction.get("deleteOptions"))
        await Eviction(api, rd, info.namespace, info.name, options).run()
        return api.respond(SUCCESS_CREATED, 201)


@dataclass
class Eviction:
    """One eviction request, carried out against the registry."""

    api: APIHandlers
    pods: ResourceDef
    namespace: str
    name: str
    options: DeleteOptions

    @property
    def registry(self) -> Registry:
        return self.api.ctx.registry

    async def run(self) -> None:
        from apiserver.registry import ListOptions  # the registry imports the handler table: not at load

        pinned_by_client = bool(self.options.resource_version)
        for _attempt in range(EVICTION_RETRIES):
            pod = await self.registry.get(self.pods, self.namespace, self.name)
            budgets = (await self.registry.list(self._budgets_rd(), self.namespace, ListOptions())).items
            plan = plan_eviction(pod, budgets)
            if plan.decrement and plan.budget:
                await self._spend(plan.budget)
            options = self.options
            if plan.pin_resource_version and not pinned_by_client:
                options = dataclasses.replace(options, resource_version=pod["metadata"]["resourceVersion"])
            try:
                await self._mark_and_delete(options)
            except APIError as err:
                if err.code != 409 or pinned_by_client or not plan.pin_resource_version:
                    raise
                if plan.budget:  # a pod judged unready may have turned ready: let the client retry
                    raise still_processing(plan.budget) from None
                continue  # a terminal or pending pod changed: judge it again
            return
        raise errors.modified_conflict(self.pods.group_resource, self.name)

    def _budgets_rd(self) -> ResourceDef:
        table = self.api.ctx.table
        return table.of(resources.PODDISRUPTIONBUDGETS)

    async def _spend(self, budget: str) -> None:
        rd = self._budgets_rd()
        now = self.registry.clock()

        def decrement(pdb: JSONObject) -> JSONObject:
            return check_and_decrement(pdb, self.name, now, self.options.dry_run)

        try:
            await self.registry.guaranteed_update(
                rd, self.namespace, budget, decrement, prepare=rd.strategy.prepare_for_status_update,
                dry_run=self.options.dry_run,
            )  # fmt: skip
        except APIError as err:
            if err.code == 409:
                raise conflicts_timeout(budget) from None
            raise

    async def _mark_and_delete(self, options: DeleteOptions) -> None:
        """addConditionAndDeletePod: the DisruptionTarget condition first (not on a dry run), then
        the delete, both held to the options' preconditions."""
        if not options.dry_run:
            now = self.registry.clock()

            def mark(pod: JSONObject) -> JSONObject:
                uid = pod["metadata"].get("uid")
                if options.uid and options.uid != uid:
                    raise errors.conflict(
                        GroupResource("", "Pod"), self.name,
                        f"the UID in the precondition ({options.uid}) does not match the UID in record "
                        f"({uid}). The object might have been deleted and then recreated",
                    )  # fmt: skip
                marked = with_disruption_target(copy.deepcopy(pod), now)
                if options.resource_version:  # a pinned version: the registry's guard enforces it
                    marked["metadata"]["resourceVersion"] = options.resource_version
                return marked

            stored, _ = await self.registry.guaranteed_update(
                self.pods, self.namespace, self.name, mark,
                prepare=self.pods.strategy.prepare_for_status_update,
            )  # fmt: skip
            if options.resource_version:
                options = dataclasses.replace(options, resource_version=stored["metadata"]["resourceVersion"])
        await self.registry.delete(self.pods, self.namespace, self.name, options)
