"""The pod lifecycle event generator: notice container changes the kubelet did not cause.

Every period it lists this kubelet's containers and reports each pod uid whose set of
(container, state) pairs changed since the last listing: a container that exited, one
removed by hand, or, on the first listing after a restart, every pod that has containers
(which is how orphans left from before are found). It touches the runtime only (listing).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from kubelet.runtime import ContainerRuntimeError, Runtime, RuntimeContainer

log = logging.getLogger(__name__)

Fingerprints = dict[str, frozenset[tuple[str, str]]]


def fingerprints(containers: list[RuntimeContainer]) -> Fingerprints:
    pods: dict[str, set[tuple[str, str]]] = {}
    for c in containers:
        ident = c.identity
        if ident is not None:
            pods.setdefault(ident.pod_uid, set()).add((c.id, c.state.value))
    return {uid: frozenset(s) for uid, s in pods.items()}


def changed_pods(old: Fingerprints, new: Fingerprints) -> set[str]:
    return {uid for uid in old.keys() | new.keys() if old.get(uid) != new.get(uid)}


class PodLifecycleEventGenerator:
    def __init__(self, runtime: Runtime, on_change: Callable[[str], None], period: float = 1.0):
        self.runtime = runtime
        self.on_change = on_change
        self.period = period
        self._last: Fingerprints = {}

    async def relist(self) -> None:
        current = fingerprints(await self.runtime.list_containers())
        for uid in sorted(changed_pods(self._last, current)):
            self.on_change(uid)
        self._last = current

    async def run(self) -> None:
        failing = False
        while True:
            try:
                await self.relist()
                if failing:
                    log.info("container runtime answers again")
                failing = False
            except (ContainerRuntimeError, OSError) as e:
                if not failing:
                    log.error("cannot list containers: %s", e)
                failing = True
            except Exception:
                if not failing:
                    log.exception("cannot list containers")
                failing = True
            await asyncio.sleep(self.period)
