"""The proxy as a real process: NodePorts forwarded to a pod run by a real kubelet on Docker.

Endpoints are written by hand here (as the endpoints controller would), so the test needs
only etcdlite, the apiserver, a kubelet and the proxy.
"""

from __future__ import annotations

import random
import socket

import pytest

from tests.integration.test_kubelet_docker import (  # noqa: F401  (fixtures: control plane, kubelet node)
    KubeletNode,
    control_plane_module_fixture,
    is_running_ready,
    node_fixture,
    whoami,
)
from tests.support import Process, http_get, wait_until

pytestmark = pytest.mark.docker


def free_node_port(taken: set[int] = frozenset()) -> int:
    """A port in the default NodePort range with nothing bound on it at 127.0.0.1."""
    for _ in range(200):
        port = random.randint(30000, 32767)
        if port in taken:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise AssertionError("no free port in 30000-32767")


@pytest.fixture
def proxy(node: KubeletNode):
    args = ["--master", node.cp.server, "--hostname-override", node.name, "--bind-address", "127.0.0.1"]
    proc = node.cp.start("proxy", args, name=f"proxy-{node.name}")
    try:
        proc.wait_log("NodePorts on 127.0.0.1")
        yield proc
        assert proc.stop() == 0, "proxy did not exit 0 on SIGTERM"
    finally:
        proc.stop()
        # The control plane outlives the test: leave no NodePort service for the next proxy.
        path = f"/api/v1/namespaces/{node.namespace}/services"
        for svc in node.api.ok("GET", path).get("items") or []:
            node.api.call("DELETE", f"{path}/{svc['metadata']['name']}", {})


def create_service(node: KubeletNode, name: str, node_port: int, app: str) -> None:
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": node.namespace},
        "spec": {
            "type": "NodePort",
            "selector": {"app": app},
            "ports": [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": node_port}],
        },
    }
    node.api.ok("POST", f"/api/v1/namespaces/{node.namespace}/services", svc)


def set_endpoints(node: KubeletNode, name: str, ips: list[str]) -> None:
    eps = {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": name, "namespace": node.namespace},
        "subsets": [{"addresses": [{"ip": ip} for ip in ips], "ports": [{"name": "http", "port": 8080}]}]
        if ips
        else [],
    }
    path = f"/api/v1/namespaces/{node.namespace}/endpoints"
    code, current = node.api.call("GET", f"{path}/{name}")
    if code == 404:
        node.api.ok("POST", path, eps)
    else:
        eps["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        node.api.ok("PUT", f"{path}/{name}", eps)


def run_pod(node: KubeletNode, name: str) -> str:
    node.create_pod(name, [whoami(node.images)])
    pod = node.wait_pod(name, "Running and Ready", is_running_ready)
    return pod["status"]["podIP"]


def refused(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex(("127.0.0.1", port)) != 0


def raw_exchange(port: int, request: bytes) -> bytes:
    """Send request, half-close, and read the whole reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(request)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        try:
            while data := s.recv(65536):
                chunks.append(data)
        except ConnectionResetError:
            pass
        return b"".join(chunks)


def test_nodeport_reaches_the_pod_and_closes_with_the_service(node, proxy):
    ip = run_pod(node, "web")
    port = free_node_port()
    create_service(node, "web", port, app="web")
    set_endpoints(node, "web", [ip])
    wait_until(
        lambda: http_get(f"http://127.0.0.1:{port}/").strip() == "web", f"web through nodePort {port}", 20
    )
    reply = raw_exchange(port, b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")  # half-closed client still gets it all
    assert reply.startswith(b"HTTP/1.") and reply.rstrip().endswith(b"web"), reply
    node.api.ok("DELETE", f"/api/v1/namespaces/{node.namespace}/services/web", {})
    wait_until(lambda: refused(port), f"nodePort {port} to stop listening", 20)
    assert proxy.proc.poll() is None


def test_round_robin_and_no_endpoints(node, proxy):
    ips = [run_pod(node, "web-a"), run_pod(node, "web-b")]
    port = free_node_port()
    create_service(node, "web", port, app="web")
    set_endpoints(node, "web", [])
    wait_until(lambda: not refused(port), f"nodePort {port} to listen", 20)
    assert raw_exchange(port, b"GET / HTTP/1.0\r\n\r\n") == b""  # accepted and closed at once
    set_endpoints(node, "web", ips)
    url = f"http://127.0.0.1:{port}/"

    def both_answer() -> set[str]:  # the proxy may still be taking up the new endpoints
        answers = {http_get(url).strip() for _ in range(2)}
        if answers != {"web-a", "web-b"}:
            raise AssertionError(f"answers: {answers}")
        return answers

    wait_until(both_answer, "both pods to answer", 20)
    # Each new connection goes to the next backend: strictly alternating, whichever comes first
    # (a random choice alternates ten times in a row once in 512 runs).
    answers = [http_get(url).strip() for _ in range(10)]
    assert answers in (["web-a", "web-b"] * 5, ["web-b", "web-a"] * 5), "answers in order: " + " ".join(
        answers
    )


def test_port_in_use_is_skipped_and_others_still_served(node, proxy: Process):
    ip = run_pod(node, "web")
    busy = free_node_port()
    with socket.socket() as held:
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        held.bind(("127.0.0.1", busy))
        held.listen()
        good = free_node_port({busy})
        create_service(node, "busy", busy, app="web")
        create_service(node, "good", good, app="web")
        set_endpoints(node, "busy", [ip])
        set_endpoints(node, "good", [ip])
        wait_until(lambda: http_get(f"http://127.0.0.1:{good}/").strip() == "web", "the free nodePort", 20)
        proxy.wait_log(f"cannot listen on 127.0.0.1:{busy}")
        assert proxy.proc.poll() is None


def test_sigterm_closes_open_connections_and_exits_0(node, proxy: Process):
    ip = run_pod(node, "web")
    port = free_node_port()
    create_service(node, "web", port, app="web")
    set_endpoints(node, "web", [ip])
    wait_until(
        lambda: http_get(f"http://127.0.0.1:{port}/").strip() == "web", f"web through nodePort {port}", 20
    )
    with socket.create_connection(("127.0.0.1", port), timeout=5) as open_conn:
        open_conn.sendall(b"GET / HTTP/1.1\r\n")  # an unfinished request keeps the connection open
        assert proxy.stop(timeout=5) == 0
        try:
            leftover = open_conn.recv(1024)
        except ConnectionResetError:
            leftover = b""
        assert leftover == b"", "the open connection should have been closed by the proxy"
    assert refused(port)
