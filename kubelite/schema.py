"""The fields of every kind kubelite serves, described once: JSON name, protobuf field number,
type, and how a strategic merge patch merges it (the `patchMergeKey` / `patchStrategy` tags of
k8s.io/api).

From this one table the apiserver derives its protobuf decoder (what `kubectl create <generator>`
sends) and its strategic-merge-patch schema. Only fields that matter to one of them are listed:
a field absent here is still stored; a patch merges it as a map or replaces it as a list, which is
what Kubernetes does for fields without a patch strategy. Protobuf numbers are those of
k8s.io/api's `generated.proto`; `None` marks a field that kubelite never decodes from protobuf.
Pure data.
"""

from __future__ import annotations

from dataclasses import dataclass

# Scalar types; any other type name is a message type in TYPES.
STRING, INT, BOOL, BYTES = "string", "int", "bool", "bytes"
TIME, QUANTITY, INT_OR_STRING = "time", "quantity", "intorstring"
SCALARS = frozenset({STRING, INT, BOOL, BYTES, TIME, QUANTITY, INT_OR_STRING})


@dataclass(frozen=True)
class Field:
    name: str  # the JSON name ("" for an embedded message, whose fields sit in the parent object)
    number: int | None  # protobuf field number
    type: str
    repeated: bool = False
    map: bool = False  # map<string, type>
    merge_key: str | None = None  # patchStrategy merge on a list of objects, keyed by this field
    merge: bool = False  # patchStrategy merge on a list of primitives: a set
    keep_zero: bool = False  # a pointer in the Go type: an explicit 0 or false is a value

    @property
    def inline(self) -> bool:
        return not self.name


def s(number: int | None, name: str) -> Field:
    return Field(name, number, STRING)


def i(number: int | None, name: str, keep_zero: bool = False) -> Field:
    return Field(name, number, INT, keep_zero=keep_zero)


def b(number: int | None, name: str) -> Field:
    return Field(name, number, BOOL)


def t(number: int | None, name: str) -> Field:
    return Field(name, number, TIME)


def m(number: int | None, name: str, type_name: str) -> Field:
    return Field(name, number, type_name)


def lst(number: int | None, name: str, type_name: str, key: str | None = None, merge: bool = False) -> Field:
    return Field(name, number, type_name, repeated=True, merge_key=key, merge=merge)


def kv(number: int | None, name: str, type_name: str = STRING) -> Field:
    return Field(name, number, type_name, map=True)


def embed(number: int, type_name: str) -> Field:
    return Field("", number, type_name)


def _object(spec: str, status: str | None = None) -> tuple[Field, ...]:
    fields = [m(1, "metadata", "ObjectMeta"), m(2, "spec", spec)]
    if status:
        fields.append(m(3, "status", status))
    return tuple(fields)


def _conditions(number: int | None) -> Field:
    return lst(number, "conditions", "Condition", key="type")


TYPES: dict[str, tuple[Field, ...]] = {
    # ------------------------------------------------------------------ meta/v1
    "ObjectMeta": (
        s(1, "name"), s(2, "generateName"), s(3, "namespace"), s(4, "selfLink"), s(5, "uid"),
        s(6, "resourceVersion"), i(7, "generation"), t(8, "creationTimestamp"), t(9, "deletionTimestamp"),
        i(10, "deletionGracePeriodSeconds"), kv(11, "labels"), kv(12, "annotations"),
        lst(13, "ownerReferences", "OwnerReference", key="uid"), lst(14, "finalizers", STRING, merge=True),
    ),
    "OwnerReference": (
        s(1, "kind"), s(3, "name"), s(4, "uid"), s(5, "apiVersion"), b(6, "controller"),
        b(7, "blockOwnerDeletion"),
    ),
    "LabelSelector": (kv(1, "matchLabels"), lst(2, "matchExpressions", "LabelSelectorRequirement")),
    "LabelSelectorRequirement": (s(1, "key"), s(2, "operator"), lst(3, "values", STRING)),
    "Condition": (s(1, "type"), s(2, "status"), t(None, "lastTransitionTime"), s(None, "reason"),
                  s(None, "message")),
    "DeleteOptions": (
        i(1, "gracePeriodSeconds", keep_zero=True), m(2, "preconditions", "Preconditions"),
        b(3, "orphanDependents"), s(4, "propagationPolicy"), lst(5, "dryRun", STRING),
    ),
    "Preconditions": (s(1, "uid"), s(2, "resourceVersion")),
    "Generic": (m(1, "metadata", "ObjectMeta"),),
    # ------------------------------------------------------------------ core/v1
    "Namespace": _object("NamespaceSpec", "NamespaceStatus"),
    "NamespaceSpec": (lst(1, "finalizers", STRING),),
    "NamespaceStatus": (s(1, "phase"), _conditions(2)),
    "ConfigMap": (
        m(1, "metadata", "ObjectMeta"), kv(2, "data"), kv(3, "binaryData", BYTES), b(4, "immutable"),
    ),
    "Secret": (
        m(1, "metadata", "ObjectMeta"), kv(2, "data", BYTES), s(3, "type"), kv(4, "stringData"),
        b(5, "immutable"),
    ),
    "Service": _object("ServiceSpec", "ServiceStatus"),
    "ServiceSpec": (
        lst(1, "ports", "ServicePort", key="port"), kv(2, "selector"), s(3, "clusterIP"), s(4, "type"),
        lst(5, "externalIPs", STRING), s(7, "sessionAffinity"), s(8, "loadBalancerIP"),
        s(10, "externalName"), s(11, "externalTrafficPolicy"), s(17, "ipFamilyPolicy"),
        lst(18, "clusterIPs", STRING), lst(19, "ipFamilies", STRING), s(22, "internalTrafficPolicy"),
    ),
    "ServicePort": (
        s(1, "name"), s(2, "protocol"), i(3, "port"), Field("targetPort", 4, INT_OR_STRING), i(5, "nodePort"),
        s(6, "appProtocol"),
    ),
    "ServiceStatus": (_conditions(2),),
    "Pod": _object("PodSpec", "PodStatus"),
    "PodTemplateSpec": (m(1, "metadata", "ObjectMeta"), m(2, "spec", "PodSpec")),
    "PodSpec": (
        lst(1, "volumes", "Volume", key="name"), lst(2, "containers", "Container", key="name"),
        s(3, "restartPolicy"), i(4, "terminationGracePeriodSeconds", keep_zero=True),
        i(5, "activeDeadlineSeconds"), s(6, "dnsPolicy"), kv(7, "nodeSelector"), s(8, "serviceAccountName"),
        s(9, "serviceAccount"), s(10, "nodeName"), b(11, "hostNetwork"), b(12, "hostPID"), b(13, "hostIPC"),
        lst(15, "imagePullSecrets", "LocalObjectReference", key="name"), s(16, "hostname"),
        s(17, "subdomain"), s(19, "schedulerName"), lst(20, "initContainers", "Container", key="name"),
        b(21, "automountServiceAccountToken"), lst(22, "tolerations", "Toleration"),
        lst(23, "hostAliases", "HostAlias", key="ip"), s(24, "priorityClassName"), i(25, "priority"),
        b(30, "enableServiceLinks"), lst(33, "topologySpreadConstraints", "Generic", key="topologyKey"),
        lst(34, "ephemeralContainers", "Container", key="name"),
        lst(38, "schedulingGates", "Generic", key="name"), lst(39, "resourceClaims", "Generic", key="name"),
        m(18, "affinity", "Affinity"),
    ),
    "Affinity": (m(1, "nodeAffinity", "NodeAffinity"), m(2, "podAffinity", "Generic"),
                 m(3, "podAntiAffinity", "Generic")),
    "NodeAffinity": (
        m(1, "requiredDuringSchedulingIgnoredDuringExecution", "NodeSelector"),
        lst(2, "preferredDuringSchedulingIgnoredDuringExecution", "PreferredSchedulingTerm"),
    ),
    "NodeSelector": (lst(1, "nodeSelectorTerms", "NodeSelectorTerm"),),
    "NodeSelectorTerm": (
        lst(1, "matchExpressions", "NodeSelectorRequirement"),
        lst(2, "matchFields", "NodeSelectorRequirement"),
    ),
    "NodeSelectorRequirement": (s(1, "key"), s(2, "operator"), lst(3, "values", STRING)),
    "PreferredSchedulingTerm": (i(1, "weight"), m(2, "preference", "NodeSelectorTerm")),
    "Container": (
        s(1, "name"), s(2, "image"), lst(3, "command", STRING), lst(4, "args", STRING), s(5, "workingDir"),
        lst(6, "ports", "ContainerPort", key="containerPort"), lst(7, "env", "EnvVar", key="name"),
        m(8, "resources", "ResourceRequirements"), lst(9, "volumeMounts", "VolumeMount", key="mountPath"),
        m(10, "livenessProbe", "Probe"), m(11, "readinessProbe", "Probe"), s(13, "terminationMessagePath"),
        s(14, "imagePullPolicy"), b(16, "stdin"), b(17, "stdinOnce"), b(18, "tty"),
        lst(19, "envFrom", "EnvFromSource"), s(20, "terminationMessagePolicy"),
        lst(21, "volumeDevices", "Generic", key="devicePath"), m(22, "startupProbe", "Probe"),
        s(24, "restartPolicy"),
    ),
    "ContainerPort": (
        s(1, "name"), i(2, "hostPort"), i(3, "containerPort"), s(4, "protocol"), s(5, "hostIP"),
    ),
    "EnvVar": (s(1, "name"), s(2, "value"), m(3, "valueFrom", "EnvVarSource")),
    "EnvVarSource": (
        m(1, "fieldRef", "ObjectFieldSelector"), m(3, "configMapKeyRef", "KeySelector"),
        m(4, "secretKeyRef", "KeySelector"),
    ),
    "ObjectFieldSelector": (s(1, "apiVersion"), s(2, "fieldPath")),
    "KeySelector": (embed(1, "LocalObjectReference"), s(2, "key"), b(3, "optional")),
    "EnvFromSource": (s(1, "prefix"), m(2, "configMapRef", "EnvSource"), m(3, "secretRef", "EnvSource")),
    "EnvSource": (embed(1, "LocalObjectReference"), b(2, "optional")),
    "LocalObjectReference": (s(1, "name"),),
    "ResourceRequirements": (kv(1, "limits", QUANTITY), kv(2, "requests", QUANTITY)),
    "VolumeMount": (s(1, "name"), b(2, "readOnly"), s(3, "mountPath"), s(4, "subPath")),
    "Volume": (s(1, "name"), embed(2, "VolumeSource")),
    "VolumeSource": (
        m(1, "hostPath", "HostPathVolumeSource"), m(2, "emptyDir", "EmptyDirVolumeSource"),
        m(6, "secret", "SecretVolumeSource"), m(19, "configMap", "ConfigMapVolumeSource"),
    ),
    "HostPathVolumeSource": (s(1, "path"), s(2, "type")),
    "EmptyDirVolumeSource": (s(1, "medium"), Field("sizeLimit", 2, QUANTITY)),
    "SecretVolumeSource": (s(1, "secretName"), lst(2, "items", "KeyToPath"), i(3, "defaultMode"),
                           b(4, "optional")),
    "ConfigMapVolumeSource": (embed(1, "LocalObjectReference"), lst(2, "items", "KeyToPath"),
                              i(3, "defaultMode"), b(4, "optional")),
    "KeyToPath": (s(1, "key"), s(2, "path"), i(3, "mode")),
    "Probe": (
        embed(1, "ProbeHandler"), i(2, "initialDelaySeconds"), i(3, "timeoutSeconds"), i(4, "periodSeconds"),
        i(5, "successThreshold"), i(6, "failureThreshold"),
    ),
    "ProbeHandler": (m(1, "exec", "ExecAction"), m(2, "httpGet", "HTTPGetAction"),
                     m(3, "tcpSocket", "TCPSocketAction")),
    "ExecAction": (lst(1, "command", STRING),),
    "HTTPGetAction": (s(1, "path"), Field("port", 2, INT_OR_STRING), s(3, "host"), s(4, "scheme")),
    "TCPSocketAction": (Field("port", 1, INT_OR_STRING), s(2, "host")),
    "Toleration": (s(1, "key"), s(2, "operator"), s(3, "value"), s(4, "effect"), i(5, "tolerationSeconds")),
    "HostAlias": (s(1, "ip"), lst(2, "hostnames", STRING)),
    "PodStatus": (
        s(1, "phase"), _conditions(2), lst(12, "podIPs", "Generic", key="ip"),
        lst(16, "hostIPs", "Generic", key="ip"),
    ),
    "Node": _object("NodeSpec", "NodeStatus"),
    "NodeSpec": (lst(7, "podCIDRs", STRING, merge=True), b(4, "unschedulable")),
    "NodeStatus": (_conditions(4), lst(5, "addresses", "Generic", key="type")),
    "ReplicationController": _object("ReplicationControllerSpec", "ReplicationControllerStatus"),
    "ReplicationControllerSpec": (
        i(1, "replicas", keep_zero=True), kv(2, "selector"), m(3, "template", "PodTemplateSpec"),
        i(4, "minReadySeconds"),
    ),
    "ReplicationControllerStatus": (_conditions(6),),
    "Binding": (m(1, "metadata", "ObjectMeta"), m(2, "target", "Generic")),
    "Endpoints": (m(1, "metadata", "ObjectMeta"),),
    "Event": (m(1, "metadata", "ObjectMeta"),),
    "Lease": (m(1, "metadata", "ObjectMeta"),),
    # ------------------------------------------------------------------ apps/v1
    "Deployment": _object("DeploymentSpec", "DeploymentStatus"),
    "DeploymentSpec": (
        i(1, "replicas", keep_zero=True), m(2, "selector", "LabelSelector"),
        m(3, "template", "PodTemplateSpec"), m(4, "strategy", "DeploymentStrategy"),
        i(5, "minReadySeconds"), i(6, "revisionHistoryLimit", keep_zero=True), b(7, "paused"),
        i(9, "progressDeadlineSeconds"),
    ),
    "DeploymentStrategy": (s(1, "type"), m(2, "rollingUpdate", "RollingUpdateDeployment")),
    "RollingUpdateDeployment": (
        Field("maxUnavailable", 1, INT_OR_STRING), Field("maxSurge", 2, INT_OR_STRING),
    ),
    "DeploymentStatus": (_conditions(6),),
    "ReplicaSet": _object("ReplicaSetSpec", "ReplicaSetStatus"),
    "ReplicaSetSpec": (
        i(1, "replicas", keep_zero=True), m(2, "selector", "LabelSelector"),
        m(3, "template", "PodTemplateSpec"), i(4, "minReadySeconds"),
    ),
    "ReplicaSetStatus": (_conditions(6),),
    "StatefulSet": _object("StatefulSetSpec", "StatefulSetStatus"),
    "StatefulSetSpec": (
        i(1, "replicas", keep_zero=True), m(2, "selector", "LabelSelector"),
        m(3, "template", "PodTemplateSpec"), lst(4, "volumeClaimTemplates", "Generic"), s(5, "serviceName"),
        s(6, "podManagementPolicy"), m(7, "updateStrategy", "StatefulSetUpdateStrategy"),
        i(8, "revisionHistoryLimit", keep_zero=True), i(9, "minReadySeconds"),
        m(10, "persistentVolumeClaimRetentionPolicy", "StatefulSetPersistentVolumeClaimRetentionPolicy"),
        m(11, "ordinals", "StatefulSetOrdinals"),
    ),
    "StatefulSetUpdateStrategy": (s(1, "type"), m(2, "rollingUpdate", "RollingUpdateStatefulSetStrategy")),
    "RollingUpdateStatefulSetStrategy": (
        i(1, "partition", keep_zero=True), Field("maxUnavailable", 2, INT_OR_STRING),
    ),
    "StatefulSetPersistentVolumeClaimRetentionPolicy": (s(1, "whenDeleted"), s(2, "whenScaled")),
    "StatefulSetOrdinals": (i(1, "start"),),
    "StatefulSetStatus": (
        i(1, "observedGeneration"), i(2, "replicas"), i(3, "readyReplicas"), i(4, "currentReplicas"),
        i(5, "updatedReplicas"), s(6, "currentRevision"), s(7, "updateRevision"), i(9, "collisionCount"),
        _conditions(10), i(11, "availableReplicas"),
    ),
    "DaemonSet": _object("DaemonSetSpec", "DaemonSetStatus"),
    "DaemonSetSpec": (
        m(1, "selector", "LabelSelector"), m(2, "template", "PodTemplateSpec"),
        m(3, "updateStrategy", "DaemonSetUpdateStrategy"), i(4, "minReadySeconds"),
        i(6, "revisionHistoryLimit", keep_zero=True),
    ),
    "DaemonSetUpdateStrategy": (s(1, "type"), m(2, "rollingUpdate", "RollingUpdateDaemonSet")),
    "RollingUpdateDaemonSet": (
        Field("maxUnavailable", 1, INT_OR_STRING), Field("maxSurge", 2, INT_OR_STRING),
    ),
    "DaemonSetStatus": (
        i(1, "currentNumberScheduled"), i(2, "numberMisscheduled"), i(3, "desiredNumberScheduled"),
        i(4, "numberReady"), i(5, "observedGeneration"), i(6, "updatedNumberScheduled"),
        i(7, "numberAvailable"), i(8, "numberUnavailable"), i(9, "collisionCount"), _conditions(10),
    ),
    # data (2) is a RawExtension: raw JSON that no patch merges into and no schema describes
    "ControllerRevision": (m(1, "metadata", "ObjectMeta"), i(3, "revision")),
    # ------------------------------------------------------------------ batch/v1 Jobs
    "Job": _object("JobSpec", "JobStatus"),
    "JobSpec": (
        i(1, "parallelism", keep_zero=True), i(2, "completions", keep_zero=True),
        i(3, "activeDeadlineSeconds"), i(7, "backoffLimit", keep_zero=True),
        i(12, "backoffLimitPerIndex", keep_zero=True), i(13, "maxFailedIndexes", keep_zero=True),
        m(4, "selector", "LabelSelector"), b(5, "manualSelector"), m(6, "template", "PodTemplateSpec"),
        i(8, "ttlSecondsAfterFinished", keep_zero=True), s(9, "completionMode"), b(10, "suspend"),
        s(14, "podReplacementPolicy"), s(15, "managedBy"), m(11, "podFailurePolicy", "Generic"),
        m(16, "successPolicy", "Generic"),
    ),
    "JobStatus": (
        lst(1, "conditions", "JobCondition", key="type"), t(2, "startTime"), t(3, "completionTime"),
        i(4, "active"), i(5, "succeeded"), i(6, "failed"), i(11, "terminating"), s(7, "completedIndexes"),
        s(10, "failedIndexes"), i(9, "ready"),
    ),
    "JobCondition": (
        s(1, "type"), s(2, "status"), t(3, "lastProbeTime"), t(4, "lastTransitionTime"), s(5, "reason"),
        s(6, "message"),
    ),
    # ------------------------------------------------------------------ batch/v1 CronJobs
    "CronJob": _object("CronJobSpec", "CronJobStatus"),
    "CronJobSpec": (
        s(1, "schedule"), s(8, "timeZone"), i(2, "startingDeadlineSeconds", keep_zero=True),
        s(3, "concurrencyPolicy"), Field("suspend", 4, BOOL, keep_zero=True),
        m(5, "jobTemplate", "JobTemplateSpec"), i(6, "successfulJobsHistoryLimit", keep_zero=True),
        i(7, "failedJobsHistoryLimit", keep_zero=True),
    ),
    "JobTemplateSpec": (m(1, "metadata", "ObjectMeta"), m(2, "spec", "JobSpec")),
    # active is listType=atomic: a patch replaces it whole
    "CronJobStatus": (
        lst(1, "active", "ObjectReference"), t(4, "lastScheduleTime"), t(5, "lastSuccessfulTime"),
    ),
    "ObjectReference": (
        s(1, "kind"), s(2, "namespace"), s(3, "name"), s(4, "uid"), s(5, "apiVersion"),
        s(6, "resourceVersion"), s(7, "fieldPath"),
    ),
    # ------------------------------------------------------------------ autoscaling/v1, policy/v1
    "Scale": _object("ScaleSpec", "ScaleStatus"),
    "ScaleSpec": (i(1, "replicas", keep_zero=True),),
    "ScaleStatus": (i(1, "replicas"), s(2, "selector")),
    "Eviction": (m(1, "metadata", "ObjectMeta"), m(2, "deleteOptions", "DeleteOptions")),
    "PodDisruptionBudget": _object("PodDisruptionBudgetSpec", "PodDisruptionBudgetStatus"),
    "PodDisruptionBudgetSpec": (
        Field("minAvailable", 1, INT_OR_STRING, keep_zero=True), m(2, "selector", "LabelSelector"),
        Field("maxUnavailable", 3, INT_OR_STRING, keep_zero=True), s(4, "unhealthyPodEvictionPolicy"),
    ),
    "PodDisruptionBudgetStatus": (
        i(1, "observedGeneration"), kv(2, "disruptedPods", TIME), i(3, "disruptionsAllowed"),
        i(4, "currentHealthy"), i(5, "desiredHealthy"), i(6, "expectedPods"), _conditions(7),
    ),
}  # fmt: skip


def fields_of(type_name: str) -> tuple[Field, ...]:
    return TYPES.get(type_name, ())


def check() -> list[str]:
    """Every message type a field names is described: the table has no dangling reference."""
    problems = []
    for owner, fields in TYPES.items():
        for f in fields:
            if f.type not in SCALARS and f.type not in TYPES:
                problems.append(f"{owner}.{f.name or '<embedded>'} names unknown type {f.type}")
            if f.merge_key and (f.type in SCALARS or not f.repeated):
                problems.append(f"{owner}.{f.name}: a merge key needs a list of objects")
    return problems
