"""What every controller of the controller-manager is built from, after client-go and
kube-controller-manager: shared informers and the context a controller is built with (`context`),
expectations of creates and deletes in flight (`expectations`), claiming objects through their
controller ownerReference (`controllerref`), which owner an informer event concerns (`owners`),
revisions in ControllerRevisions (`history`), and creating and deleting pods from a template with
events (`podcontrol`). The work queue is `kubelite.workqueue`, the informers `kubelite.informer`.
"""
