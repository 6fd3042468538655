"""The Raft core's failures, shared by the core, the storages and the driver. Touches nothing."""

from __future__ import annotations


class RaftError(Exception):
    """Base of every error the Raft core raises."""


class CompactedError(RaftError):
    """The requested index was compacted away into a snapshot: send a snapshot instead."""


class UnavailableError(RaftError):
    """The requested index is past the end of the log."""


class SnapOutOfDateError(RaftError):
    """A snapshot older than the one already held was offered; it must not replace it."""


class SnapshotTemporarilyUnavailableError(RaftError):
    """The storage is still making a snapshot; the leader retries on a later heartbeat."""


class ProposalDroppedError(RaftError):
    """A proposal could not be accepted: no leader known, or a leader transfer is in progress."""


class IllegalTransitionError(RaftError):
    """A role change that Raft forbids (e.g. follower -> leader): a bug in the caller or the core."""


class RaftInvariantError(RaftError):
    """The log was asked to break a Raft invariant (e.g. truncate a committed entry): never ignore."""
