"""The locally built images do what the cluster and the tests rely on, on the real Docker Engine.

Builds every image with `build_images()` (minutes on a machine that has none, seconds after),
then runs each. Containers and networks made here are removed, also on failure; the images stay,
they are the cache.
"""

from __future__ import annotations

import urllib.request
import uuid

import pytest

from kubelite import images
from kubelite.waiting import wait_for
from tests.support import http_get, wait_until

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def built(docker_client):
    return images.build_images(log=lambda line: None)


@pytest.fixture
def containers(docker_client):
    """Tracks containers a test starts and removes them (force) afterwards."""
    made: list = []
    yield made
    for container in made:
        try:
            container.remove(force=True)
        except Exception as exc:  # already gone is fine; anything else is worth seeing
            if "No such container" not in str(exc):
                raise


@pytest.fixture
def network(docker_client):
    net = docker_client.networks.create(f"kubelite-imgtest-{uuid.uuid4().hex[:8]}", driver="bridge")
    try:
        yield net
    finally:
        net.reload()
        for container in net.containers:
            container.remove(force=True)
        net.remove()


def test_build_images_returns_every_reference(built, docker_client):
    assert built == {
        "kubelite": images.KUBELITE_IMAGE,
        "pause": images.PAUSE_IMAGE,
        "busybox": images.BUSYBOX_IMAGE,
        "whoami": images.WHOAMI_IMAGE,
        "whoami-1.0": "kubelite/whoami:1.0",
        "whoami-2.0": "kubelite/whoami:2.0",
    }
    for reference in built.values():
        image = docker_client.images.get(reference)
        key = image.labels.get(images.HASH_LABEL, "")
        assert len(key) == 64, f"{reference} lacks its content key label: {image.labels}"
        assert f"{reference.rpartition(':')[0]}:{key[:16]}" in image.tags


def test_a_whoami_release_answers_with_its_name_and_version(built, docker_client):
    container = docker_client.containers.run(
        "kubelite/whoami:2.0", detach=True, hostname="web-abc", ports={"8080/tcp": ("127.0.0.1", None)}
    )
    try:
        container.reload()
        port = container.attrs["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"]
        answer = wait_until(lambda: http_get(f"http://127.0.0.1:{port}/"), "whoami 2.0 to answer", timeout=20)
        assert answer == "web-abc 2.0\n"
    finally:
        container.remove(force=True)


def test_second_build_is_a_no_op(built, docker_client):
    # Other work on this machine may edit the checkout (a changed source must rebuild) or build
    # at the same time (builds queue on a lock), so an attempt only counts when the sources held
    # still across it; any one clean attempt out of five passes. A no-op runs no build, import,
    # download or compile step (each logs a line) and leaves every image as it was.
    failures: list[str] = []
    for _attempt in range(5):
        images.build_images(log=lambda line: None)
        source = images._source_tree()[0]
        before = {ref: docker_client.images.get(ref).id for ref in built.values()}
        lines: list[str] = []
        images.build_images(log=lines.append)
        after = {ref: docker_client.images.get(ref).id for ref in built.values()}
        if images._source_tree()[0] != source:
            failures.append("the sources changed meanwhile")
            continue
        work = [line for line in lines if not line.startswith("images: ready in ")]
        if not work and len(lines) == 1 and before == after:
            return
        failures.append(f"logged {lines}, images {before} -> {after}")
    pytest.fail("an up-to-date build was never a no-op:\n" + "\n".join(failures))


def test_pause_exits_0_on_sigterm_without_the_sigkill_fallback(built, docker_client, containers):
    pause = docker_client.containers.run(images.PAUSE_IMAGE, detach=True)
    containers.append(pause)
    wait_for(lambda: pause.reload() or pause.status == "running", "pause container running", 10)
    pause.stop(timeout=10)  # SIGTERM, then SIGKILL after 10 s: exit code 137
    pause.reload()
    state = pause.attrs["State"]
    assert (state["Status"], state["ExitCode"], state["OOMKilled"]) == ("exited", 0, False), state


def test_busybox_runs_a_shell(built, docker_client, containers):
    box = docker_client.containers.run(
        images.BUSYBOX_IMAGE, ["sh", "-c", "echo hi; sleep 0 && id -u"], detach=True
    )
    containers.append(box)
    result = box.wait(timeout=30)
    assert result["StatusCode"] == 0, box.logs().decode()
    assert box.logs().decode().split() == ["hi", "0"]


def test_whoami_answers_with_its_hostname_and_exits_0_on_sigterm(built, docker_client, network, containers):
    server = docker_client.containers.run(
        images.WHOAMI_IMAGE, detach=True, hostname="foo", network=network.name
    )
    containers.append(server)

    def address() -> str:
        server.reload()
        return server.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]

    url = f"http://{wait_for(address, 'whoami container address', 10)}:8080/"

    def get() -> str:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.read().decode()

    assert wait_for(get, f"an answer from whoami at {url}", 15) == "foo\n"
    answers = [get() for _ in range(20)]
    assert set(answers) == {"foo\n"}, answers
    server.stop(timeout=10)  # SIGTERM, then SIGKILL after 10 s: exit code 137
    server.reload()
    state = server.attrs["State"]
    assert (state["Status"], state["ExitCode"], state["OOMKilled"]) == ("exited", 0, False), state


def test_whoami_in_a_pod_sandbox_answers_with_the_pod_name(built, docker_client, network, containers):
    """As the kubelet runs it: joined to a pause sandbox's network namespace, hostname = pod name."""
    sandbox = docker_client.containers.run(
        images.PAUSE_IMAGE, detach=True, hostname="web-0", network=network.name
    )
    containers.append(sandbox)
    app = docker_client.containers.run(
        images.WHOAMI_IMAGE, detach=True, network_mode=f"container:{sandbox.id}"
    )
    containers.insert(0, app)  # removed before its sandbox
    sandbox.reload()
    ip = sandbox.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]

    def get() -> str:
        with urllib.request.urlopen(f"http://{ip}:8080/", timeout=2) as resp:
            return resp.read().decode()

    assert wait_for(get, f"an answer from whoami in sandbox {ip}", 15) == "web-0\n"


def test_kubelite_image_has_the_dependencies_and_the_source(built, docker_client, containers):
    code = (
        "import grpc, aiohttp, yaml, docker, google.protobuf, apiserver, etcdlite, kubelite.pb; print('ok')"
    )
    box = docker_client.containers.run(images.KUBELITE_IMAGE, ["python", "-c", code], detach=True)
    containers.append(box)
    result = box.wait(timeout=60)
    assert result["StatusCode"] == 0, box.logs().decode()
    assert box.logs().decode().strip() == "ok"


def test_kubelite_image_holds_no_venv_git_or_caches(built, docker_client, containers):
    script = (
        "ls /opt/kubelite; find /opt/kubelite /wheels /deps -name .venv -o -name .git -o -name __pycache__"
        " -o -name '*.egg-info' -o -name '*.whl' -o -name requirements.txt 2>/dev/null; true"
    )
    box = docker_client.containers.run(images.KUBELITE_IMAGE, ["sh", "-c", script], detach=True)
    containers.append(box)
    assert box.wait(timeout=60)["StatusCode"] == 0
    listing = box.logs().decode().split()
    assert sorted(listing) == sorted(images.imagedefs.SOURCE_PACKAGES), listing
