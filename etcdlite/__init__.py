"""etcdlite: the cluster's store, an etcd v3 API server written in Python, replicated by Raft.

Modules, from the inside out: `mvcc` (the pure MVCC state machine), `request` (write requests
as log entries), `raft/` (the pure Raft core, its durable log and the peer transport: raftpb
frames over one TCP stream per peer), `raftdriver` (the one task that steps the core, persists,
sends and applies) with what it delegates: `raftinputs` (what is fed to the core), `apply` (the
committed entries and snapshots reaching the store), `envelope` (the framing of entries and
snapshot data), `membership`, `alarms`, `waits` (proposals and reads in flight) and
`raftsnapshots` (writing, sending and installing snapshots); `snapshot` (the store's snapshot
encoding), `lessor`, `compactor` and
`watch` (pure policies around the store), `server` (the member), `grpc_api` (the etcd v3 gRPC
services), `config` (etcd's flags) and `__main__` (the process). `wal` keeps the framing both
logs share and reads the single-member log of earlier versions, which a member migrates.
"""
