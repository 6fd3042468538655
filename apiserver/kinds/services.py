"""Services: defaults (type, ports, IP families), validation, cluster IP and NodePort
allocation claims, and the `kubectl get svc` columns. Pure apart from the injected lookup of
taken allocations.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from typing import Any, ClassVar

from apiserver import tables
from apiserver.allocation import (
    NODE_PORT_PREFIX,
    SERVICE_IP_PREFIX,
    NodePortRange,
    ServiceIPRange,
    ip_key,
    node_port_key,
)
from apiserver.errors import FieldError, duplicate, forbidden, invalid, not_supported, required
from apiserver.kinds.common import check_protocol
from apiserver.meta import JSONObject
from apiserver.strategy import Allocation, Claim, Strategy, TakenLookup
from apiserver.tables import AGE_COLUMN, NAME_COLUMN, Column
from apiserver.validation import (
    NameValidator,
    dns1035_label,
    dns1123_label,
    dns1123_subdomain,
    port_range_errors,
)

SERVICE_TYPES = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]
AFFINITIES = ["ClientIP", "None"]
NODE_PORT_TYPES = ("NodePort", "LoadBalancer")


def _needs_node_ports(spec: JSONObject) -> bool:
    return spec.get("type") in NODE_PORT_TYPES


def _needs_cluster_ip(spec: JSONObject) -> bool:
    return spec.get("type") != "ExternalName"


def _same_node_ports(new: JSONObject, old: JSONObject) -> bool:
    def ports(spec: JSONObject) -> list[Any]:
        return [p.get("nodePort") for p in spec.get("ports") or [] if isinstance(p, dict)]

    return ports(new) == ports(old)


class ServiceStrategy(Strategy):
    kind = "Service"
    patch_schema = "Service"
    return_deleted_object = True
    columns: ClassVar[list[Column]] = [
        NAME_COLUMN,
        Column("Type", description="type determines how the Service is exposed."),
        Column("Cluster-IP", description="clusterIP is the IP address of the service."),
        Column(
            "External-IP",
            description="IP addresses for which nodes will also accept traffic for this service.",
        ),
        Column("Port(s)", description="The list of ports that are exposed by this service."),
        AGE_COLUMN,
        Column(
            "Selector",
            description="Route service traffic to pods with label keys and values matching this selector.",
            priority=1,
        ),
    ]

    def __init__(self, namespaced: bool, ip_range: ServiceIPRange, node_ports: NodePortRange) -> None:
        super().__init__(namespaced)
        self.ip_range = ip_range
        self.node_ports = node_ports

    def name_validator(self) -> NameValidator:
        return dns1035_label

    def default(self, obj: JSONObject) -> None:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        for port in spec.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")
                if port.get("targetPort") in (None, 0, ""):
                    port["targetPort"] = port.get("port")
        if spec["type"] != "ExternalName":
            spec.setdefault("internalTrafficPolicy", "Cluster")
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
        if spec["type"] in NODE_PORT_TYPES:
            spec.setdefault("externalTrafficPolicy", "Cluster")
        if spec["type"] == "LoadBalancer":
            spec.setdefault("allocateLoadBalancerNodePorts", True)
        if spec.get("clusterIP") and not spec.get("clusterIPs"):
            spec["clusterIPs"] = [spec["clusterIP"]]
        elif spec.get("clusterIPs") and not spec.get("clusterIP"):
            spec["clusterIP"] = spec["clusterIPs"][0]

    def prepare_for_create(self, obj: JSONObject) -> None:
        obj["status"] = {"loadBalancer": {}}

    def prepare_for_update(self, new: JSONObject, old: JSONObject) -> None:
        new["status"] = old.get("status") or {"loadBalancer": {}}
        new_spec, old_spec = new.get("spec"), old.get("spec")
        if not isinstance(new_spec, dict) or not isinstance(old_spec, dict):
            return
        # dropTypeDependentFields: switching type clears what the new type does not use,
        # unless the user changed it in the same request.
        if (
            _needs_node_ports(old_spec)
            and not _needs_node_ports(new_spec)
            and _same_node_ports(new_spec, old_spec)
        ):
            for port in new_spec.get("ports") or []:
                if isinstance(port, dict):
                    port.pop("nodePort", None)
        if (
            _needs_cluster_ip(old_spec)
            and not _needs_cluster_ip(new_spec)
            and new_spec.get("clusterIP") == old_spec.get("clusterIP")
        ):
            for key in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy", "internalTrafficPolicy"):
                new_spec.pop(key, None)
        # patchAllocatedValues: an update that leaves allocations empty keeps the old ones.
        if _needs_cluster_ip(new_spec) and not new_spec.get("clusterIP") and old_spec.get("clusterIP"):
            new_spec["clusterIP"] = old_spec["clusterIP"]
            new_spec["clusterIPs"] = old_spec.get("clusterIPs") or [old_spec["clusterIP"]]
        if _needs_node_ports(new_spec) and _needs_node_ports(old_spec):
            old_ports = {
                (p.get("port"), p.get("protocol")): p.get("nodePort")
                for p in old_spec.get("ports") or []
                if isinstance(p, dict) and p.get("nodePort")
            }
            for port in new_spec.get("ports") or []:
                if isinstance(port, dict) and not port.get("nodePort"):
                    previous = old_ports.get((port.get("port"), port.get("protocol", "TCP")))
                    if previous:
                        port["nodePort"] = previous

    def validate(self, obj: JSONObject) -> list[FieldError]:
        errs = super().validate(obj)
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return [*errs, required("spec")]
        kind = spec.get("type")
        if kind not in SERVICE_TYPES:
            errs.append(not_supported("spec.type", kind, SERVICE_TYPES))
        affinity = spec.get("sessionAffinity")
        if affinity not in AFFINITIES:
            errs.append(not_supported("spec.sessionAffinity", affinity, AFFINITIES))
        cluster_ip = spec.get("clusterIP") or ""
        if kind == "ExternalName":
            name = spec.get("externalName") or ""
            if not name:
                errs.append(required("spec.externalName"))
            else:
                errs.extend(
                    invalid("spec.externalName", name, m) for m in dns1123_subdomain(name.rstrip("."))
                )
            if cluster_ip:
                errs.append(forbidden("spec.clusterIP", "may not be set for ExternalName services"))
        elif cluster_ip and cluster_ip != "None":
            try:
                ipaddress.ip_address(cluster_ip)
            except ValueError:
                errs.append(
                    invalid(
                        "spec.clusterIPs[0]",
                        cluster_ip,
                        "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                    )
                )
        ports = spec.get("ports") or []
        if not ports and kind != "ExternalName" and cluster_ip != "None":
            errs.append(required("spec.ports"))
        names: set[str] = set()
        seen: set[tuple[Any, Any]] = set()
        for i, port in enumerate(ports):
            path = f"spec.ports[{i}]"
            if not isinstance(port, dict):
                errs.append(invalid(path, str(port), "must be an object"))
                continue
            name = port.get("name") or ""
            if len(ports) > 1 and not name:
                errs.append(required(f"{path}.name"))
            elif name:
                errs.extend(invalid(f"{path}.name", name, m) for m in dns1123_label(name))
                if name in names:
                    errs.append(duplicate(f"{path}.name", name))
                names.add(name)
            errs.extend(port_range_errors(f"{path}.port", port.get("port")))
            errs.extend(check_protocol(f"{path}.protocol", port.get("protocol")))
            key = (port.get("port"), port.get("protocol"))
            if key in seen:
                errs.append(duplicate(path, f"{port.get('port')}/{port.get('protocol')}"))
            seen.add(key)
            target = port.get("targetPort")
            if isinstance(target, int):
                errs.extend(port_range_errors(f"{path}.targetPort", target))
            elif isinstance(target, str) and not target:
                errs.append(required(f"{path}.targetPort"))
            node_port = port.get("nodePort")
            if node_port:
                if kind not in NODE_PORT_TYPES:
                    errs.append(forbidden(f"{path}.nodePort", f"may not be used when `type` is '{kind}'"))
                else:
                    errs.extend(port_range_errors(f"{path}.nodePort", node_port))
        return errs

    def validate_update(self, new: JSONObject, old: JSONObject) -> list[FieldError]:
        errs = self.validate(new)
        new_ip = (new.get("spec") or {}).get("clusterIP")
        old_ip = (old.get("spec") or {}).get("clusterIP")
        if old_ip and new_ip and new_ip != old_ip:
            errs.append(invalid("spec.clusterIPs[0]", new_ip, "may not change once set"))
        return errs

    def fields(self, obj: JSONObject) -> dict[str, str]:
        out = super().fields(obj)
        out["spec.clusterIP"] = (obj.get("spec") or {}).get("clusterIP", "")
        out["spec.type"] = (obj.get("spec") or {}).get("type", "")
        return out

    # ------------------------------------------------------------------ allocations

    def claims(self, obj: JSONObject) -> list[Claim]:
        spec = obj.get("spec") or {}
        out: list[Claim] = []
        ip = spec.get("clusterIP")
        if _needs_cluster_ip(spec) and ip and ip != "None":
            out.append(
                Claim(
                    ip_key(ip),
                    "spec.clusterIPs",
                    [ip],
                    f"failed to allocate IP {ip}: provided IP is already allocated",
                )
            )
        keys: set[str] = set()
        for i, port in enumerate(spec.get("ports") or []):
            node_port = port.get("nodePort") if isinstance(port, dict) else None
            if _needs_node_ports(spec) and isinstance(node_port, int) and node_port:
                key = node_port_key(node_port)
                if key not in keys:
                    keys.add(key)
                    out.append(
                        Claim(
                            key, f"spec.ports[{i}].nodePort", node_port, "provided port is already allocated"
                        )
                    )
        return out

    async def allocate(self, obj: JSONObject, old: JSONObject | None, taken: TakenLookup) -> Allocation:
        spec = obj.get("spec")
        result = Allocation()
        if not isinstance(spec, dict):
            return result
        old_spec = (old or {}).get("spec") or {}
        ip = spec.get("clusterIP") or ""
        if _needs_cluster_ip(spec):
            if not ip:
                used = {k[len(SERVICE_IP_PREFIX) :] for k in await taken(SERVICE_IP_PREFIX)}
                picked = self.ip_range.pick(used)
                if picked is None:
                    result.errors.append(
                        invalid(
                            "spec.clusterIPs",
                            [],
                            f"failed to allocate IP: range {self.ip_range.cidr} is full",
                        )
                    )
                else:
                    spec["clusterIP"] = picked
                    spec["clusterIPs"] = [picked]
                    result.automatic.add(ip_key(picked))
            elif ip != "None" and ip != old_spec.get("clusterIP") and not self.ip_range.contains(ip):
                result.errors.append(
                    invalid(
                        "spec.clusterIPs",
                        [ip],
                        f"failed to allocate IP {ip}: the provided IP ({ip}) is not in the valid range. "
                        f"The range of valid IPs is {self.ip_range.cidr}",
                    )
                )
        if _needs_node_ports(spec) and not (
            spec.get("type") == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is False
        ):
            old_ports = {p.get("nodePort") for p in old_spec.get("ports") or [] if isinstance(p, dict)}
            used_ports: set[int] | None = None
            for i, port in enumerate(spec.get("ports") or []):
                if not isinstance(port, dict):
                    continue
                node_port = port.get("nodePort")
                if node_port:
                    if (
                        isinstance(node_port, int)
                        and node_port not in old_ports
                        and not self.node_ports.contains(node_port)
                    ):
                        result.errors.append(
                            invalid(
                                f"spec.ports[{i}].nodePort",
                                node_port,
                                "provided port is not in the valid range. "
                                f"The range of valid ports is {self.node_ports}",
                            )
                        )
                    continue
                if used_ports is None:
                    used_ports = {int(k[len(NODE_PORT_PREFIX) :]) for k in await taken(NODE_PORT_PREFIX)}
                    used_ports |= {
                        p.get("nodePort")
                        for p in spec.get("ports") or []
                        if isinstance(p, dict) and p.get("nodePort")
                    }
                picked_port = self.node_ports.pick(used_ports)
                if picked_port is None:
                    result.errors.append(
                        invalid(
                            f"spec.ports[{i}].nodePort",
                            0,
                            f"range {self.node_ports} is full: no free node port",
                        )
                    )
                    continue
                port["nodePort"] = picked_port
                used_ports.add(picked_port)
                result.automatic.add(node_port_key(picked_port))
        return result

    # ------------------------------------------------------------------ printing

    def cells(self, obj: JSONObject, now: dt.datetime) -> list[Any]:
        meta = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        kind = spec.get("type", "ClusterIP")
        cluster_ip = spec.get("clusterIP") or "<none>"
        if kind == "ExternalName":
            cluster_ip = "<none>"
        return [
            meta.get("name", ""),
            kind,
            cluster_ip,
            external_ip_text(obj),
            ports_text(spec.get("ports") or []),
            tables.age(meta.get("creationTimestamp"), now),
            ",".join(f"{k}={v}" for k, v in sorted((spec.get("selector") or {}).items())) or "<none>",
        ]


def external_ip_text(service: JSONObject) -> str:
    spec = service.get("spec") or {}
    kind = spec.get("type", "ClusterIP")
    external = list(spec.get("externalIPs") or [])
    if kind == "ExternalName":
        return spec.get("externalName") or "<none>"
    if kind == "LoadBalancer":
        ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        addresses = [i.get("ip") or i.get("hostname") for i in ingress if isinstance(i, dict)]
        addresses = [a for a in addresses if a] + external
        return ",".join(addresses) if addresses else "<pending>"
    return ",".join(external) if external else "<none>"


def ports_text(ports: list[Any]) -> str:
    parts = []
    for port in ports:
        if not isinstance(port, dict):
            continue
        text = str(port.get("port"))
        if port.get("nodePort"):
            text += f":{port['nodePort']}"
        parts.append(f"{text}/{port.get('protocol', 'TCP')}")
    return ",".join(parts) if parts else "<none>"
