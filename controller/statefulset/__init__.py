"""The StatefulSet controller: pods with stable names `<set>-<ordinal>`, made and removed in order,
updated from the highest ordinal down to a partition (Kubernetes' pkg/controller/statefulset).

identity.py names and labels a pod, plan.py decides a sync, revisions.py keeps the
ControllerRevisions, controller.py does the IO.
"""

from controller.statefulset.controller import StatefulSetController

__all__ = ["StatefulSetController"]
