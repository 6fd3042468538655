"""Which container instance /containerLogs reads: the current one, or the one before it."""

from kubelet import labels as lbl
from kubelet.runtime import ContainerState, RuntimeContainer
from kubelet.server import pick_instance


def instance(pod_name, container, attempt, namespace="default"):
    pod = {"metadata": {"name": pod_name, "namespace": namespace, "uid": f"uid-{pod_name}"}}
    labels = lbl.container_labels(pod, container, attempt, "n", "c")
    return RuntimeContainer(f"{pod_name}-{container}-{attempt}", "x", labels, "i", "i", ContainerState.EXITED)


def test_current_and_previous_instances():
    containers = [instance("web", "app", 0), instance("web", "app", 2), instance("web", "app", 1)]
    containers += [
        instance("web", lbl.SANDBOX, 0),
        instance("other", "app", 5),
        instance("web", "app", 9, "ns2"),
    ]
    assert pick_instance(containers, "default", "web", "app", previous=False).id == "web-app-2"
    assert pick_instance(containers, "default", "web", "app", previous=True).id == "web-app-1"
    assert pick_instance(containers, "default", "web", "nope", previous=False) is None
    assert pick_instance([instance("web", "app", 0)], "default", "web", "app", previous=True) is None
