"""etcdlite's Raft: a pure, synchronous consensus core (modelled on etcd's raft library) and its IO.

The core (types, errors, storage, log, progress, readonly, confchange, core, node) touches
nothing: no asyncio, sockets, disk, clock or global randomness. Only durable (the WAL) and
transport (the peer network), driven by etcdlite.raftdriver, do IO. Import the submodules
directly; this file stays empty so importing one piece never drags in another.
"""
