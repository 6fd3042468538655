"""Where `kubectl logs` is sent, and the errors users see before a container has started."""

import pytest

from apiserver.errors import APIError
from apiserver.podlogs import log_location

NODE = {
    "metadata": {"name": "node-1"},
    "status": {
        "addresses": [
            {"type": "Hostname", "address": "node-1"},
            {"type": "InternalIP", "address": "127.0.0.2"},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
    },
}


def pod(containers=("web",), state=None):
    statuses = [{"name": c, "state": state or {"running": {}}} for c in containers]
    return {
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {"nodeName": "node-1", "containers": [{"name": c} for c in containers]},
        "status": {"containerStatuses": statuses},
    }


def test_single_container_log_goes_to_the_kubelet_with_kubectls_parameters():
    url = log_location(pod(), NODE, {"tailLines": "2", "follow": "true", "pretty": "x"})
    assert url == "http://127.0.0.2:10250/containerLogs/ns/p/web?follow=true&tailLines=2"


def test_container_must_be_named_when_there_are_several_and_must_exist():
    with pytest.raises(
        APIError, match=r"a container name must be specified for pod p, choose one of: \[a b\]"
    ):
        log_location(pod(("a", "b")), NODE, {})
    assert log_location(pod(("a", "b")), NODE, {"container": "b"}).endswith("/containerLogs/ns/p/b")
    with pytest.raises(APIError, match="container c is not valid for pod p"):
        log_location(pod(("a", "b")), NODE, {"container": "c"})


def test_a_container_that_has_not_started_is_waiting():
    waiting = pod(state={"waiting": {"reason": "ImagePullBackOff"}})
    with pytest.raises(
        APIError, match='container "web" in pod "p" is waiting to start: ImagePullBackOff'
    ) as err:
        log_location(waiting, NODE, {})
    assert err.value.code == 400
    with pytest.raises(APIError, match="is waiting to start: ContainerCreating"):
        log_location(pod(), None, {})
