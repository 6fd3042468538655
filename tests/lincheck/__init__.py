"""A linearizability checker (Wing & Gong search with Lowe's memoization) for histories of an
etcd-like key-value store, and a recorder of such histories from concurrent etcd v3 gRPC clients.

`check(history)` needs nothing but the history; `tests.lincheck.history.record(...)` (imported on
its own, it needs gRPC) produces one from real endpoints.
"""

from tests.lincheck.checker import Budget, CheckResult, Outcome, Violation, check
from tests.lincheck.model import CompareTarget, KeyState, KVInput, KVModel, KVOperation, KVOutput, OpKind
from tests.lincheck.operation import Failure, Operation

__all__ = [
    "Budget",
    "CheckResult",
    "CompareTarget",
    "Failure",
    "KVInput",
    "KVModel",
    "KVOperation",
    "KVOutput",
    "KeyState",
    "OpKind",
    "Operation",
    "Outcome",
    "Violation",
    "check",
]
