"""The garbage collector of the controller-manager (Kubernetes' pkg/controller/garbagecollector).

- `graph`: the dependency graph its informers keep, and which objects an event concerns (pure).
- `decide`: what to do with an object given the state of its owners, and the patches (pure).
- `monitors`: which resources it watches, from discovery, and the informers it runs itself.
- `collector`: the controller: the work queue, `sync(uid)`, and the API calls.
"""

from controller.garbagecollector.collector import GarbageCollector

__all__ = ["GarbageCollector"]
