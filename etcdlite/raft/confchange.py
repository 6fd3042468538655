"""Membership changes, one at a time: how a ConfChange turns one ConfState into the next.

Pure functions shared by the core (which applies committed changes to its progress tracker) and
the driver (which records the resulting ConfState in snapshots). Touches nothing.
"""

from __future__ import annotations

from etcdlite.raft.types import ConfChange, ConfChangeType, ConfState


def check_conf_change(cs: ConfState, cc: ConfChange) -> None:
    """Refuse a change that cannot be applied (before it is proposed, so it never enters the log)."""
    if cc.node_id == 0:
        raise ValueError("conf change for node id 0")
    if cc.type is ConfChangeType.ADD_LEARNER_NODE and cc.node_id in cs.voters:
        raise ValueError(f"node {cc.node_id:x} is a voter; demoting a voter to learner is not supported")
    if cc.type is ConfChangeType.REMOVE_NODE and len(cs.voters) == 1 and cc.node_id in cs.voters:
        raise ValueError(f"removing node {cc.node_id:x} would leave the cluster without voters")


def apply_conf_change(cs: ConfState, cc: ConfChange) -> ConfState:
    """The configuration after cc. Idempotent; a change check_conf_change refuses is a no-op here."""
    voters = set(cs.voters)
    learners = set(cs.learners)
    if cc.type is ConfChangeType.ADD_NODE:
        voters.add(cc.node_id)
        learners.discard(cc.node_id)
    elif cc.type is ConfChangeType.ADD_LEARNER_NODE:
        if cc.node_id not in voters:
            learners.add(cc.node_id)
    elif cc.type is ConfChangeType.REMOVE_NODE:
        if voters - {cc.node_id}:
            voters.discard(cc.node_id)
        learners.discard(cc.node_id)
    return ConfState(voters=tuple(sorted(voters)), learners=tuple(sorted(learners)))
