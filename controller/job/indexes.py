"""Indexed Jobs: a pod's completion index, the `completedIndexes` text ("1,3-5,7"), which indexes
to start next, and the per-index pod template (name `<job>-<index>-`, hostname `<job>-<index>`,
the index as annotation, label and the `JOB_COMPLETION_INDEX` env var). Pure.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

from kubelite.objects import Object

COMPLETION_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
COMPLETION_INDEX_ENV = "JOB_COMPLETION_INDEX"


def pod_index(pod: Object) -> int | None:
    """The completion index a pod carries (annotation, else label), or None if it has none valid."""
    meta = pod.get("metadata") or {}
    text = (meta.get("annotations") or {}).get(COMPLETION_INDEX_ANNOTATION)
    if text is None:
        text = (meta.get("labels") or {}).get(COMPLETION_INDEX_ANNOTATION)
    if text is None or not str(text).isdigit():
        return None
    return int(text)


def valid_index(pod: Object, completions: int) -> int | None:
    index = pod_index(pod)
    return index if index is not None and index < completions else None


def format_indexes(indexes: Iterable[int]) -> str:
    """Intervals as Kubernetes writes them: `0-2` for three or more, `3,4` for two, `7` alone."""
    ordered = sorted(set(indexes))
    parts: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        first, last = ordered[i], ordered[j]
        if last == first:
            parts.append(str(first))
        elif last == first + 1:
            parts.append(f"{first},{last}")
        else:
            parts.append(f"{first}-{last}")
        i = j + 1
    return ",".join(parts)


def parse_indexes(text: str | None, completions: int) -> set[int]:
    """The indexes `format_indexes` wrote (those below completions); malformed parts are ignored."""
    out: set[int] = set()
    for part in (text or "").split(","):
        first, _, last = part.strip().partition("-")
        if not first.isdigit() or (last and not last.isdigit()):
            continue
        out.update(i for i in range(int(first), int(last or first) + 1) if i < completions)
    return out


def pending_indexes(completions: int, done: set[int], running: set[int], count: int) -> list[int]:
    """The lowest `count` indexes that neither succeeded nor have an active pod."""
    out: list[int] = []
    for index in range(completions):
        if len(out) >= count:
            break
        if index not in done and index not in running:
            out.append(index)
    return out


def indexed_template(template: Object, job_name: str, index: int) -> Object:
    """The template of the pod for one index, as the Job controller changes it."""
    out = copy.deepcopy(template)
    meta = out.setdefault("metadata", {})
    meta.setdefault("annotations", {})[COMPLETION_INDEX_ANNOTATION] = str(index)
    meta.setdefault("labels", {})[COMPLETION_INDEX_ANNOTATION] = str(index)
    spec = out.setdefault("spec", {})
    if not spec.get("hostname"):
        spec["hostname"] = f"{job_name}-{index}"
    field_path = f"metadata.annotations['{COMPLETION_INDEX_ANNOTATION}']"
    for key in ("initContainers", "containers"):
        for container in spec.get(key) or []:
            env = container.setdefault("env", [])
            if any(e.get("name") == COMPLETION_INDEX_ENV for e in env):
                continue
            env.append(
                {
                    "name": COMPLETION_INDEX_ENV,
                    "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": field_path}},
                }
            )
    return out
