"""From pod spec to runtime config: command/args, env and $(VAR), pull policy, limits, QoS."""

import pytest

from kubelet.containerspec import (
    PullPolicy,
    container_config,
    pod_hostname,
    pull_policy,
    qos_class,
    sandbox_config,
    split_image,
    termination_grace,
    unsupported_features,
)
from kubelet.envvars import ContainerConfigError, container_env, expand, referenced_configmaps


def make_pod(**container):
    c = {"name": "app", "image": "kubelite/busybox:latest", **container}
    return {
        "metadata": {"name": "web-1", "namespace": "prod", "uid": "u1", "labels": {"app": "web"}},
        "spec": {"containers": [c], "nodeName": "node-1"},
    }


def config_of(pod, pod_ip="10.0.0.7"):
    return container_config(pod, pod["spec"]["containers"][0], "sb", 2, "node-1", "kl", "127.0.0.2", pod_ip)


def test_command_is_entrypoint_and_args_are_cmd():
    cfg = config_of(make_pod(command=["/bin/sh", "-c"], args=["echo hi"]))
    assert cfg.entrypoint == ["/bin/sh", "-c"]
    assert cfg.command == ["echo hi"]
    assert cfg.name == "k8s_app_web-1_prod_u1_2"
    assert cfg.sandbox_id == "sb"


def test_nothing_given_keeps_image_defaults():
    cfg = config_of(make_pod())
    assert cfg.entrypoint is None and cfg.command is None and cfg.working_dir is None


def test_env_in_order_with_expansion_and_field_refs():
    env = [
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
        {"name": "GREETING", "value": "hello $(POD) at $(IP)"},
        {"name": "LATER", "value": "$(UNDEFINED) $$(POD)"},
    ]
    cfg = config_of(make_pod(env=env, args=["say", "$(GREETING)"], workingDir="/tmp"))
    assert cfg.env == {
        "POD": "web-1",
        "IP": "10.0.0.7",
        "APP": "web",
        "GREETING": "hello web-1 at 10.0.0.7",
        "LATER": "$(UNDEFINED) $(POD)",
    }
    assert cfg.command == ["say", "hello web-1 at 10.0.0.7"]
    assert cfg.working_dir == "/tmp"


@pytest.mark.parametrize(
    ("text", "out"),
    [
        ("$(A)", "1"),
        ("$$(A)", "$(A)"),
        ("$(", "$("),
        ("a$b", "a$b"),
        ("$(B)", "$(B)"),
        ("$$", "$"),
        ("$", "$"),
    ],
)
def test_expand(text, out):
    assert expand(text, {"A": "1"}) == out


def test_unsupported_env_source_is_a_config_error():
    with pytest.raises(ContainerConfigError, match="secretKeyRef"):
        config_of(make_pod(env=[{"name": "X", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]))


def test_configmap_env_and_env_from():
    c = {
        "name": "app",
        "envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "S_"}],
        "env": [
            {"name": "S_MODE", "value": "override"},
            {"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "level"}}},
            {"name": "OPT", "valueFrom": {"configMapKeyRef": {"name": "gone", "key": "k", "optional": True}}},
        ],
    }
    assert referenced_configmaps(c) == {"settings", "gone"}
    configmaps = {"settings": {"data": {"MODE": "fast", "level": "3", "bad key": "x"}}, "gone": None}
    env = container_env(make_pod(), c, "127.0.0.2", "10.0.0.7", configmaps)
    assert env == {"S_MODE": "override", "S_level": "3", "LEVEL": "3"}


def test_missing_configmap_or_key_is_a_config_error():
    ref = {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "nope"}}}
    with pytest.raises(ContainerConfigError, match='configmap "settings" not found'):
        container_env(make_pod(), {"env": [ref]}, "", "", {"settings": None})
    with pytest.raises(ContainerConfigError, match="couldn't find key nope in ConfigMap prod/settings"):
        container_env(make_pod(), {"env": [ref]}, "", "", {"settings": {"data": {}}})


def test_limits_become_docker_limits():
    cfg = config_of(make_pod(resources={"limits": {"cpu": "500m", "memory": "64Mi"}}))
    assert cfg.memory_limit == 64 * 2**20
    assert cfg.nano_cpus == 500_000_000
    assert cfg.cpu_shares == 512


def test_bad_quantity_is_a_config_error():
    with pytest.raises(ContainerConfigError, match="quantit"):
        config_of(make_pod(resources={"limits": {"memory": "lots"}}))


@pytest.mark.parametrize(
    ("image", "policy", "expected"),
    [
        ("busybox", None, PullPolicy.ALWAYS),
        ("busybox:latest", None, PullPolicy.ALWAYS),
        ("busybox:1.36", None, PullPolicy.IF_NOT_PRESENT),
        ("reg:5000/busybox", None, PullPolicy.ALWAYS),
        ("busybox@sha256:abc", None, PullPolicy.IF_NOT_PRESENT),
        ("busybox:latest", "Never", PullPolicy.NEVER),
        ("busybox:1", "Always", PullPolicy.ALWAYS),
    ],
)
def test_pull_policy_defaults(image, policy, expected):
    c = {"image": image}
    if policy:
        c["imagePullPolicy"] = policy
    assert pull_policy(c) is expected


def test_split_image():
    assert split_image("busybox") == ("busybox", "latest")
    assert split_image("reg:5000/a/b:1") == ("reg:5000/a/b", "1")
    assert split_image("reg:5000/a/b") == ("reg:5000/a/b", "latest")
    assert split_image("a@sha256:00") == ("a", "sha256:00")


def test_sandbox_config_hostname_and_labels():
    pod = make_pod()
    pod["metadata"]["name"] = "x" * 70
    cfg = sandbox_config(pod, "kubelite/pause:latest", "net", "node-1", "kl", 1)
    assert cfg.hostname == "x" * 63
    assert cfg.labels["io.kubernetes.container.name"] == "POD"
    assert cfg.network == "net"
    assert pod_hostname({"metadata": {"name": "p"}, "spec": {"hostname": "h"}}) == "h"


def test_termination_grace_prefers_the_deletion():
    pod = make_pod()
    assert termination_grace(pod) == 30
    pod["spec"]["terminationGracePeriodSeconds"] = 5
    assert termination_grace(pod) == 5
    pod["metadata"]["deletionGracePeriodSeconds"] = 1
    assert termination_grace(pod) == 1


@pytest.mark.parametrize(
    ("resources", "qos"),
    [
        ({}, "BestEffort"),
        ({"requests": {"cpu": "100m"}}, "Burstable"),
        ({"limits": {"cpu": "1", "memory": "1Gi"}}, "Guaranteed"),
        (
            {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1000m", "memory": "1Gi"}},
            "Guaranteed",
        ),
        ({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}}, "Burstable"),
    ],
)
def test_qos_class(resources, qos):
    assert qos_class(make_pod(resources=resources)) == qos


def test_unsupported_features_are_named():
    pod = make_pod(
        volumeMounts=[{"name": "v", "mountPath": "/v"}], ports=[{"containerPort": 80, "hostPort": 80}]
    )
    pod["spec"]["initContainers"] = [{"name": "init", "image": "x"}]
    pod["spec"]["volumes"] = [{"name": "v", "emptyDir": {}}]
    assert unsupported_features(pod) == [
        "spec.initContainers",
        "spec.volumes",
        "volumeMounts of container app",
        "hostPort of container app",
    ]
    assert unsupported_features(make_pod()) == []
