"""When each pod of a run-to-completion workload was created, started and finished, as a pod
watch saw it, and what that says about a Job's pace: how long pods wait to run, how long they run,
how full the Job kept its parallelism, and the most pods it ever had unfinished at once; and the
table rows that say so. Pure: the caller feeds it watch events with the time it saw them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.phases import Row
from bench.stats import percentile


@dataclass
class PodTimeline:
    created: dict[str, float] = field(default_factory=dict)
    running: dict[str, float] = field(default_factory=dict)
    finished: dict[str, float] = field(default_factory=dict)
    unfinished: set[str] = field(default_factory=set)
    most_unfinished: int = 0
    events: int = 0  # watch events seen: one per write to a pod (create, bind, status, finalizers, ...)

    def seen(self, pod: dict[str, Any], now: float, deleted: bool = False) -> None:
        """A watch event for `pod` at `now`. Unfinished = Pending or Running and not being deleted:
        what counts against a Job's parallelism."""
        self.events += 1
        name = pod["metadata"]["name"]
        phase = (pod.get("status") or {}).get("phase") or "Pending"
        self.created.setdefault(name, now)
        if phase == "Running":
            self.running.setdefault(name, now)
        if phase in ("Succeeded", "Failed"):
            self.running.setdefault(name, now)  # a pod can finish between two events
            self.finished.setdefault(name, now)
        if not deleted and phase in ("Pending", "Running") and not pod["metadata"].get("deletionTimestamp"):
            self.unfinished.add(name)
        else:
            self.unfinished.discard(name)
        self.most_unfinished = max(self.most_unfinished, len(self.unfinished))

    def summary(self, parallelism: int, seconds: float) -> dict[str, float]:
        """p50/p99 of create -> Running and Running -> finished (s); `busy_pct`: the share of the
        parallelism x duration that pods spent between creation and finishing."""
        waits = [self.running[n] - self.created[n] for n in self.running if n in self.created]
        runs = [self.finished[n] - self.running[n] for n in self.finished if n in self.running]
        lifetimes = sum(self.finished[n] - self.created[n] for n in self.finished if n in self.created)
        out: dict[str, float] = {
            "pods": float(len(self.created)),
            "most_unfinished": float(self.most_unfinished),
        }
        if self.created:
            out["events_per_pod"] = self.events / len(self.created)
        if waits:
            out.update(
                create_to_running_p50=percentile(waits, 50), create_to_running_p99=percentile(waits, 99)
            )
        if runs:
            out.update(
                running_to_finished_p50=percentile(runs, 50), running_to_finished_p99=percentile(runs, 99)
            )
        if parallelism > 0 and seconds > 0:
            out["busy_pct"] = 100 * lifetimes / (parallelism * seconds)
        return out


def job_pod_rows(pods: dict[str, float], parallelism: int) -> list[Row]:
    """Where a Job's time went, from its pods' timeline; its parallelism must never be exceeded."""
    rows: list[Row] = []
    if "most_unfinished" in pods:
        most = int(pods["most_unfinished"])
        name = "  pods pending or running at once, at most"
        rows.append((name, str(most), f"<= {parallelism}", most <= parallelism))
    for key, label in (
        ("create_to_running", "create -> Running"),
        ("running_to_finished", "Running -> Succeeded"),
    ):
        if f"{key}_p50" in pods:
            value = f"{pods[key + '_p50']:.2f} / {pods[key + '_p99']:.2f} s"
            rows.append((f"  pod {label} p50 / p99", value, "", None))
    if "events_per_pod" in pods:
        rows.append(("  writes per pod (pod watch events)", f"{pods['events_per_pod']:.1f}", "", None))
    if "busy_pct" in pods:
        name = f"  slots busy (pod lifetimes / {parallelism} x duration)"
        rows.append((name, f"{pods['busy_pct']:.0f} %", "", None))
    return rows
