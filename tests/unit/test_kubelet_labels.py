"""Container labels and names written by the kubelet must read back to the same identity."""

from hypothesis import given
from hypothesis import strategies as st

from kubelet import labels as lbl


def make_pod(name="web", namespace="default", uid="u-1", grace=None):
    pod = {"metadata": {"name": name, "namespace": namespace, "uid": uid}, "spec": {"containers": []}}
    if grace is not None:
        pod["spec"]["terminationGracePeriodSeconds"] = grace
    return pod


def test_labels_round_trip_to_identity():
    pod = make_pod(grace=5)
    labels = lbl.container_labels(pod, "app", 3, "node-1", "kl", spec_hash="abc")
    ident = lbl.identity_of(labels)
    assert ident == lbl.ContainerIdentity("default", "web", "u-1", "app", 3, "abc", 5)
    assert labels[lbl.NODE] == "node-1"
    assert labels[lbl.CLUSTER] == "kl"
    assert not ident.is_sandbox


def test_sandbox_identity_and_docker_name():
    pod = make_pod(name="p", namespace="ns", uid="1234")
    assert lbl.docker_name(pod, lbl.SANDBOX, 0) == "k8s_POD_p_ns_1234_0"
    assert lbl.identity_of(lbl.container_labels(pod, lbl.SANDBOX, 0, "n", "c")).is_sandbox


def test_foreign_or_broken_labels_have_no_identity():
    assert lbl.identity_of({}) is None
    assert lbl.identity_of({"com.example": "x"}) is None
    labels = lbl.container_labels(make_pod(), "app", 0, "n", "c")
    labels[lbl.CONTAINER_ATTEMPT] = "not-a-number"
    assert lbl.identity_of(labels) is None


def test_default_grace_period_is_30s():
    assert lbl.identity_of(lbl.container_labels(make_pod(), "a", 0, "n", "c")).grace_seconds == 30


def test_spec_hash_changes_with_image_only_when_relevant():
    c = {"name": "a", "image": "busybox:1", "args": ["sleep", "1"]}
    assert lbl.container_spec_hash(c) == lbl.container_spec_hash(dict(c))
    assert lbl.container_spec_hash(c) != lbl.container_spec_hash({**c, "image": "busybox:2"})
    assert lbl.container_spec_hash(c) == lbl.container_spec_hash({**c, "readinessProbe": {"exec": {}}})


@given(
    name=st.from_regex(r"[a-z0-9]([a-z0-9.-]{0,20}[a-z0-9])?", fullmatch=True),
    namespace=st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True),
    container=st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True),
    attempt=st.integers(min_value=0, max_value=10_000),
)
def test_round_trip_property(name, namespace, container, attempt):
    pod = make_pod(name=name, namespace=namespace, uid="9f0c-11")
    ident = lbl.identity_of(lbl.container_labels(pod, container, attempt, "node", "cluster"))
    assert (ident.namespace, ident.pod_name, ident.container_name, ident.attempt) == (
        namespace,
        name,
        container,
        attempt,
    )
