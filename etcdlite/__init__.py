"""etcdlite: the cluster's store, an etcd v3 API server written in Python.

Modules, from the inside out: `mvcc` (the pure MVCC state machine), `request` (write requests
as log entries), `wal` and `snapshot` (durability on disk), `lessor`, `compactor` and `watch`
(pure policies around the store), `server` (the member: log driver, background loops),
`grpc_api` (the etcd v3 gRPC services), `config` (etcd's flags) and `__main__` (the process).
"""
