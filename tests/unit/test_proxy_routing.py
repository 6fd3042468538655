"""The NodePort routing table: which services get listeners and where connections go."""

from proxy.listener import RoundRobin
from proxy.routing import Backend, routing_table


def service(name, ports, type_="NodePort", namespace="default"):
    return {"metadata": {"name": name, "namespace": namespace}, "spec": {"type": type_, "ports": ports}}


def endpoints(name, subsets, namespace="default"):
    return {f"{namespace}/{name}": {"metadata": {"name": name, "namespace": namespace}, "subsets": subsets}}


def test_nodeport_service_routes_to_ready_addresses_at_endpoints_port():
    svc = service("web", [{"port": 80, "targetPort": "http", "nodePort": 30080}])
    eps = endpoints(
        "web",
        [
            {
                "addresses": [{"ip": "10.0.0.3"}, {"ip": "10.0.0.2"}],
                "notReadyAddresses": [{"ip": "10.0.0.9"}],
                "ports": [{"port": 8080, "protocol": "TCP"}],
            }
        ],
    )
    table = routing_table([svc], eps)
    route = table.routes[30080]
    assert route.service == "default/web"
    assert route.backends == (Backend("10.0.0.2", 8080), Backend("10.0.0.3", 8080))


def test_named_ports_are_matched_by_name():
    svc = service(
        "web",
        [
            {"name": "http", "port": 80, "nodePort": 30080},
            {"name": "admin", "port": 81, "nodePort": 30081},
        ],
    )
    eps = endpoints(
        "web",
        [
            {
                "addresses": [{"ip": "10.0.0.2"}],
                "ports": [{"name": "admin", "port": 9000}, {"name": "http", "port": 8080}],
            }
        ],
    )
    table = routing_table([svc], eps)
    assert table.routes[30080].backends == (Backend("10.0.0.2", 8080),)
    assert table.routes[30081].backends == (Backend("10.0.0.2", 9000),)
    assert table.routes[30081].display == "default/web:admin"


def test_subsets_with_different_ports_are_combined():
    svc = service("web", [{"name": "http", "port": 80, "nodePort": 30080}])
    eps = endpoints(
        "web",
        [
            {"addresses": [{"ip": "10.0.0.2"}], "ports": [{"name": "http", "port": 8080}]},
            {"addresses": [{"ip": "10.0.0.3"}], "ports": [{"name": "http", "port": 8081}]},
        ],
    )
    assert routing_table([svc], eps).routes[30080].backends == (
        Backend("10.0.0.2", 8080),
        Backend("10.0.0.3", 8081),
    )


def test_only_nodeport_and_loadbalancer_tcp_ports_get_routes():
    services = [
        service("a", [{"port": 80, "nodePort": 30001}], type_="ClusterIP"),
        service("b", [{"port": 80, "nodePort": 30002}], type_="LoadBalancer"),
        service("c", [{"port": 53, "nodePort": 30003, "protocol": "UDP"}]),
        service("d", [{"port": 80}]),
    ]
    assert set(routing_table(services, {}).routes) == {30002}


def test_service_without_endpoints_has_a_route_without_backends():
    table = routing_table([service("web", [{"port": 80, "nodePort": 30080}])], {})
    assert table.routes[30080].backends == ()


def test_same_name_in_another_namespace_is_not_used():
    svc = service("web", [{"port": 80, "nodePort": 30080}])
    eps = endpoints("web", [{"addresses": [{"ip": "10.0.0.2"}], "ports": [{"port": 80}]}], namespace="other")
    assert routing_table([svc], eps).routes[30080].backends == ()


def test_duplicate_node_port_first_claim_wins_and_is_reported():
    services = [
        service("b", [{"port": 80, "nodePort": 30080}]),
        service("a", [{"port": 80, "nodePort": 30080}]),
    ]
    table = routing_table(services, {})
    assert table.routes[30080].service == "default/a"
    assert table.conflicts == ("nodePort 30080 of default/b is already used by default/a",)


def test_round_robin_rotates_and_survives_list_changes():
    rr = RoundRobin()
    backends = (Backend("a", 1), Backend("b", 1), Backend("c", 1))
    # the one whose turn it is first, then the others in list order as fallbacks
    orders = ["".join(b.ip for b in rr.order(backends)) for _ in range(4)]
    assert orders == ["abc", "bca", "cab", "abc"]
    assert rr.order((Backend("x", 1),)) == [Backend("x", 1)]
    assert rr.order(()) == []  # takes no turn
    # after x's turn (position 0 of its list) comes position 1 of the new list
    assert rr.order(backends) == [Backend("b", 1), Backend("c", 1), Backend("a", 1)]
