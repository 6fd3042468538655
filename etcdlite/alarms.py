"""The cluster's alarms (etcd's alarm store): which member raised which alarm, NOSPACE say.

Alarms are raised and cleared through Raft (ALARM entries, etcdlite.envelope), so every member
holds the same set, and a Raft snapshot carries them beside the member list. Memory only;
touches nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from kubelite.pb.etcdserverpb import rpc_pb2

log = logging.getLogger(__name__)


class Alarms:
    """`raised` holds (member id, etcdserverpb.AlarmType) pairs."""

    def __init__(self) -> None:
        self.raised: set[tuple[int, int]] = set()

    def load(self, alarms: Iterable[rpc_pb2.AlarmMember]) -> None:
        """A snapshot's alarms replace these."""
        self.raised = {(a.memberID, a.alarm) for a in alarms}

    def apply(self, request: rpc_pb2.AlarmRequest) -> None:
        alarm = (request.memberID, request.alarm)
        name = rpc_pb2.AlarmType.Name(request.alarm)
        if request.action == rpc_pb2.AlarmRequest.ACTIVATE and request.alarm != rpc_pb2.NONE:
            if alarm not in self.raised:
                log.warning("alarm %s raised by member %016x", name, request.memberID)
            self.raised.add(alarm)
        elif request.action == rpc_pb2.AlarmRequest.DEACTIVATE and alarm in self.raised:
            log.info("alarm %s of member %016x cleared", name, request.memberID)
            self.raised.discard(alarm)

    def members(self, alarm: int = rpc_pb2.NONE) -> list[rpc_pb2.AlarmMember]:
        """The raised alarms, of one type unless `alarm` is NONE."""
        return [
            rpc_pb2.AlarmMember(memberID=member_id, alarm=kind)
            for member_id, kind in sorted(self.raised)
            if alarm == rpc_pb2.NONE or kind == alarm
        ]
