"""Violations of the key-value model that one look at a key's history shows, without any search.

Each rule follows from the model (so it never rejects a history the search would accept); it only
makes the common failures cheap to find and to explain, even when many operations with an unknown
outcome would make the search itself explode:

- a read of a value that no write of the key wrote, or that was only written after the read returned;
- a read whose mod revision is not the revision of the only write of its value;
- a read of a value at store revision H with mod revision m while a completed change of the key got a
  revision in (m, H] (the read missed it: a stale read);
- a compare-and-swap that succeeded although the key changed after what it compared against (a lost
  update);
- a response whose store revision is below that of a response on the same key that came back before
  the request was sent (time went backwards).

Pure logic; touches nothing.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from tests.lincheck.model import CompareTarget, KVOperation, OpKind
from tests.lincheck.operation import Anomaly


def find_anomalies(ops: Sequence[KVOperation]) -> list[Anomaly]:
    """The anomalies in one key's operations, earliest call first."""
    found = [*_impossible_reads(ops), *_lost_updates(ops), *_revisions_going_back(ops)]
    found.sort(key=lambda a: a.op.call_time)
    return found


def _write_revision(op: KVOperation) -> int | None:
    """The revision at which a completed operation changed the key, if it did and it is known."""
    out = op.output
    if out is None or out.revision is None:
        return None
    kind = op.input.kind
    if (
        kind is OpKind.PUT
        or (kind is OpKind.CAS and out.succeeded)
        or (kind is OpKind.DELETE and out.deleted)
    ):
        return out.revision
    return None


def _writers(ops: Sequence[KVOperation]) -> dict[str, list[KVOperation]]:
    """value -> the operations that wrote it or may have (values are not assumed unique)."""
    writers: dict[str, list[KVOperation]] = {}
    for op in ops:
        may_write = op.input.kind in (OpKind.PUT, OpKind.CAS) and (op.output is None or op.output.succeeded)
        if may_write and op.input.value is not None:
            writers.setdefault(op.input.value, []).append(op)
    return writers


def _changes(ops: Sequence[KVOperation]) -> list[tuple[int, int, KVOperation]]:
    """(revision, call time, operation) of every completed change of the key with a known revision."""
    return sorted((rev, op.call_time, op) for op in ops if (rev := _write_revision(op)) is not None)


def _impossible_reads(ops: Sequence[KVOperation]) -> list[Anomaly]:
    writers = _writers(ops)
    changes = _changes(ops)
    revisions = [rev for rev, _, _ in changes]
    found: list[Anomaly] = []
    for op in ops:
        out = op.output
        if op.input.kind is not OpKind.GET or out is None or op.return_time is None:
            continue
        if out.value is not None:
            sources = writers.get(out.value, [])
            if not sources:
                found.append(Anomaly(op, f"read {out.value!r}, which no write of this key wrote"))
                continue
            if all(w.call_time > op.return_time for w in sources):
                found.append(
                    Anomaly(op, f"read {out.value!r} before any write of it was sent", tuple(sources))
                )
                continue
            [source, *more] = sources
            mod = None if source.output is None else source.output.revision
            if not more and mod is not None and out.mod_revision is not None and out.mod_revision != mod:
                found.append(
                    Anomaly(
                        op,
                        f"read {out.value!r} at mod revision {out.mod_revision}, but it was written at {mod}",
                        (source,),
                    )
                )
                continue
        if out.value is not None and out.mod_revision is not None and out.revision is not None:
            # A completed change of this key in (mod revision, store revision] that the read missed.
            # (Not for a read of an absent key: a delete whose outcome is unknown may explain it.)
            at = bisect.bisect_right(revisions, out.mod_revision)
            if at < len(revisions) and revisions[at] <= out.revision:
                missed = changes[at][2]
                found.append(
                    Anomaly(
                        op,
                        f"read at store revision {out.revision} saw mod revision {out.mod_revision},"
                        f" missing the change at revision {revisions[at]}",
                        (missed,),
                    )
                )
    return found


def _lost_updates(ops: Sequence[KVOperation]) -> list[Anomaly]:
    """A compare-and-swap that succeeded at revision R although the key changed after what it compared
    against: after the write of the value it expected (if that value was written once), or after the
    mod revision it expected (when that is not 0: a delete whose outcome is unknown may explain 0)."""
    writers = _writers(ops)
    changes = _changes(ops)
    revisions = [rev for rev, _, _ in changes]
    found: list[Anomaly] = []
    for op in ops:
        out = op.output
        if op.input.kind is not OpKind.CAS or out is None or not out.succeeded or out.revision is None:
            continue
        if op.input.compare is CompareTarget.VALUE:
            sources = writers.get(op.input.expected_value or "", [])
            if not sources:
                found.append(Anomaly(op, f"swapped from {op.input.expected_value!r}, which no write wrote"))
                continue
            if len(sources) > 1 or sources[0].output is None or sources[0].output.revision is None:
                continue
            since, why = sources[0].output.revision, f"the write of {op.input.expected_value!r}"
        else:
            since, why = op.input.expected_mod_revision or 0, "the mod revision it compared"
            if since == 0:
                continue
        at = bisect.bisect_right(revisions, since)
        if at < len(revisions) and revisions[at] < out.revision:
            found.append(
                Anomaly(
                    op,
                    f"swap succeeded at revision {out.revision}, but the key changed at revision"
                    f" {revisions[at]}, after {why} (revision {since})",
                    (changes[at][2],),
                )
            )
    return found


def _revisions_going_back(ops: Sequence[KVOperation]) -> list[Anomaly]:
    """Sweep in call order, keeping the highest store revision among responses already returned."""
    returned = sorted(
        (op for op in ops if op.output is not None and op.output.revision is not None),
        key=lambda op: op.return_time or 0,
    )
    found: list[Anomaly] = []
    highest: KVOperation | None = None
    at = 0
    for op in sorted(returned, key=lambda o: o.call_time):
        while at < len(returned) and (returned[at].return_time or 0) < op.call_time:
            candidate = returned[at]
            if highest is None or _rev(candidate) > _rev(highest):
                highest = candidate
            at += 1
        if highest is None:
            continue
        floor = _rev(highest)
        changed = _write_revision(op) is not None
        if _rev(op) < floor or (changed and _rev(op) == floor):
            found.append(
                Anomaly(
                    op,
                    f"answered at store revision {_rev(op)}, below revision {floor} already answered"
                    " before it was sent",
                    (highest,),
                )
            )
    return found


def _rev(op: KVOperation) -> int:
    assert op.output is not None and op.output.revision is not None
    return op.output.revision
