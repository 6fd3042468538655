"""The Deployment controller of the controller-manager, split by concern as Kubernetes'
pkg/controller/deployment is:

- `controller`: DeploymentController, its informer handlers and `sync(key)` (deployment_controller.go)
- `sync`: the new ReplicaSet and revisions, scaling, history cleanup, status writes (sync.go)
- `rolling`, `recreate`: the two strategies (rolling.go, recreate.go)
- `rollback`: the deprecated rollback annotation (rollback.go)
- `progress`: the Progressing condition and the progress deadline (progress.go)
- `util`, `proportion`, `status`, `hashing`: the pure parts (util/deployment_util.go and
  controller_utils.go's ComputeHash)

It reads Deployments, ReplicaSets and pods from shared informers and writes ReplicaSets and the
Deployments' status, revision annotation and (for a rollback) template; the ReplicaSet controller
makes the pods.
"""

from controller.deployment.controller import DeploymentController

__all__ = ["DeploymentController"]
