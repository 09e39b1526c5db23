"""What the kubernetes client's models cannot say about the served kinds' definitions, taken
from the Go types of k8s.io/api and k8s.io/apimachinery (v0.31, checked against master for
the fields newer clients carry) and from the v1.31 client: the group each model belongs to,
the fields whose Go type the client flattens, the strategic-merge-patch and list/map
extensions of the fields, and which fields the served version (v1.31) has and requires.

The patch extensions are what `kubectl apply` computes its patch from once the schemas are
served, so they must be the struct tags kubectl's own (built-in) types carry: a wrong merge
key would change the patch it sends. Keys are definition names without the "io.k8s.api." or
"io.k8s.apimachinery.pkg.apis." prefix.

Over 500 lines because it is data, one table per fact, read together when a definition is
built: split, the tables for one definition would sit in several files.
"""

from __future__ import annotations

from typing import Any, Literal

Obj = dict[str, Any]
Special = Literal["IntOrString", "Quantity", "MicroTime", "byte", "FieldsV1"]

# Models without a group prefix in their name whose group is not core. The client names a
# model V<version><Kind> unless two groups share the name at that version, when it prefixes
# the group (CoreV1Event, EventsV1Event); V2 models are autoscaling's.
META_V1 = frozenset(
    {
        "Condition", "DeleteOptions", "LabelSelector", "LabelSelectorRequirement", "ListMeta",
        "ManagedFieldsEntry", "ObjectMeta", "OwnerReference", "Preconditions", "ShardInfo",
        "Status", "StatusCause", "StatusDetails",
    }
)  # fmt: skip
APPS_V1 = frozenset(
    {
        "Deployment", "DeploymentCondition", "DeploymentList", "DeploymentSpec",
        "DeploymentStatus", "DeploymentStrategy", "ReplicaSet", "ReplicaSetCondition",
        "ReplicaSetList", "ReplicaSetSpec", "ReplicaSetStatus", "RollingUpdateDeployment",
    }
)  # fmt: skip
AUTOSCALING_V1 = frozenset(
    {
        "CrossVersionObjectReference", "HorizontalPodAutoscaler", "HorizontalPodAutoscalerList",
        "HorizontalPodAutoscalerSpec", "HorizontalPodAutoscalerStatus", "Scale", "ScaleSpec",
        "ScaleStatus",
    }
)  # fmt: skip
COORDINATION_V1 = frozenset({"Lease", "LeaseList", "LeaseSpec"})


def _ext(
    strategy: str = "",
    *,
    key: str = "",
    list_type: str = "",
    map_keys: tuple[str, ...] = (),
    map_type: str = "",
) -> Obj:
    out: Obj = {}
    if strategy:
        out["x-kubernetes-patch-strategy"] = strategy
    if key:
        out["x-kubernetes-patch-merge-key"] = key
    if list_type:
        out["x-kubernetes-list-type"] = list_type
    if map_keys:
        out["x-kubernetes-list-map-keys"] = list(map_keys)
    if map_type:
        out["x-kubernetes-map-type"] = map_type
    return out


# Go types the client turns into plain strings, objects or datetimes: IntOrString and
# Quantity (for a map, its values), MicroTime, []byte (base64 strings) and FieldsV1.
SPECIAL_FIELDS: dict[str, dict[str, Special]] = {
    "apps.v1.RollingUpdateDeployment": {
        "maxSurge": "IntOrString",
        "maxUnavailable": "IntOrString",
    },
    "autoscaling.v2.HPAScalingRules": {
        "tolerance": "Quantity",
    },
    "autoscaling.v2.MetricTarget": {
        "averageValue": "Quantity",
        "value": "Quantity",
    },
    "autoscaling.v2.MetricValueStatus": {
        "averageValue": "Quantity",
        "value": "Quantity",
    },
    "coordination.v1.LeaseSpec": {
        "acquireTime": "MicroTime",
        "renewTime": "MicroTime",
    },
    "core.v1.ConfigMap": {
        "binaryData": "byte",
    },
    "core.v1.ContainerStatus": {
        "allocatedResources": "Quantity",
    },
    "core.v1.EmptyDirVolumeSource": {
        "sizeLimit": "Quantity",
    },
    "core.v1.Event": {
        "eventTime": "MicroTime",
    },
    "core.v1.EventSeries": {
        "lastObservedTime": "MicroTime",
    },
    "core.v1.HTTPGetAction": {
        "port": "IntOrString",
    },
    "core.v1.NodeAllocatableMappedResources": {
        "quantity": "Quantity",
    },
    "core.v1.NodeAllocatableOverheadResources": {
        "perContainer": "Quantity",
        "perPod": "Quantity",
    },
    "core.v1.NodeStatus": {
        "allocatable": "Quantity",
        "capacity": "Quantity",
    },
    "core.v1.PodSpec": {
        "overhead": "Quantity",
    },
    "core.v1.PodStatus": {
        "allocatedResources": "Quantity",
    },
    "core.v1.ResourceFieldSelector": {
        "divisor": "Quantity",
    },
    "core.v1.ResourceRequirements": {
        "limits": "Quantity",
        "requests": "Quantity",
    },
    "core.v1.Secret": {
        "data": "byte",
    },
    "core.v1.ServicePort": {
        "targetPort": "IntOrString",
    },
    "core.v1.TCPSocketAction": {
        "port": "IntOrString",
    },
    "core.v1.VolumeResourceRequirements": {
        "limits": "Quantity",
        "requests": "Quantity",
    },
    "meta.v1.ManagedFieldsEntry": {
        "fieldsV1": "FieldsV1",
    },
}

# The served version's (v1.31) required fields, from the v1.31 client's models: newer clients
# mark some differently (1.37 requires Deployment.spec and no longer DeploymentCondition.type),
# and explain's "-required-" must be the server's.
REQUIRED_V1_31: dict[str, tuple[str, ...]] = {
    "apps.v1.DeploymentCondition": ("status", "type"),
    "apps.v1.DeploymentList": ("items",),
    "apps.v1.DeploymentSpec": ("selector", "template"),
    "apps.v1.ReplicaSetCondition": ("status", "type"),
    "apps.v1.ReplicaSetList": ("items",),
    "apps.v1.ReplicaSetSpec": ("selector",),
    "apps.v1.ReplicaSetStatus": ("replicas",),
    "autoscaling.v1.CrossVersionObjectReference": ("kind", "name"),
    "autoscaling.v1.HorizontalPodAutoscalerList": ("items",),
    "autoscaling.v1.HorizontalPodAutoscalerSpec": ("maxReplicas", "scaleTargetRef"),
    "autoscaling.v1.HorizontalPodAutoscalerStatus": ("currentReplicas", "desiredReplicas"),
    "autoscaling.v2.ContainerResourceMetricSource": ("container", "name", "target"),
    "autoscaling.v2.ContainerResourceMetricStatus": ("container", "current", "name"),
    "autoscaling.v2.CrossVersionObjectReference": ("kind", "name"),
    "autoscaling.v2.ExternalMetricSource": ("metric", "target"),
    "autoscaling.v2.ExternalMetricStatus": ("current", "metric"),
    "autoscaling.v2.HPAScalingPolicy": ("periodSeconds", "type", "value"),
    "autoscaling.v2.HorizontalPodAutoscalerCondition": ("status", "type"),
    "autoscaling.v2.HorizontalPodAutoscalerList": ("items",),
    "autoscaling.v2.HorizontalPodAutoscalerSpec": ("maxReplicas", "scaleTargetRef"),
    "autoscaling.v2.HorizontalPodAutoscalerStatus": ("desiredReplicas",),
    "autoscaling.v2.MetricIdentifier": ("name",),
    "autoscaling.v2.MetricSpec": ("type",),
    "autoscaling.v2.MetricStatus": ("type",),
    "autoscaling.v2.MetricTarget": ("type",),
    "autoscaling.v2.ObjectMetricSource": ("describedObject", "metric", "target"),
    "autoscaling.v2.ObjectMetricStatus": ("current", "describedObject", "metric"),
    "autoscaling.v2.PodsMetricSource": ("metric", "target"),
    "autoscaling.v2.PodsMetricStatus": ("current", "metric"),
    "autoscaling.v2.ResourceMetricSource": ("name", "target"),
    "autoscaling.v2.ResourceMetricStatus": ("current", "name"),
    "coordination.v1.LeaseList": ("items",),
    "core.v1.AWSElasticBlockStoreVolumeSource": ("volumeID",),
    "core.v1.AppArmorProfile": ("type",),
    "core.v1.AttachedVolume": ("devicePath", "name"),
    "core.v1.AzureDiskVolumeSource": ("diskName", "diskURI"),
    "core.v1.AzureFileVolumeSource": ("secretName", "shareName"),
    "core.v1.CSIVolumeSource": ("driver",),
    "core.v1.CephFSVolumeSource": ("monitors",),
    "core.v1.CinderVolumeSource": ("volumeID",),
    "core.v1.ClusterTrustBundleProjection": ("path",),
    "core.v1.ConfigMapKeySelector": ("key",),
    "core.v1.ConfigMapList": ("items",),
    "core.v1.ConfigMapNodeConfigSource": ("kubeletConfigKey", "name", "namespace"),
    "core.v1.Container": ("name",),
    "core.v1.ContainerPort": ("containerPort",),
    "core.v1.ContainerResizePolicy": ("resourceName", "restartPolicy"),
    "core.v1.ContainerStateTerminated": ("exitCode",),
    "core.v1.ContainerStatus": ("image", "imageID", "name", "ready", "restartCount"),
    "core.v1.DaemonEndpoint": ("Port",),
    "core.v1.DownwardAPIVolumeFile": ("path",),
    "core.v1.EnvVar": ("name",),
    "core.v1.EphemeralContainer": ("name",),
    "core.v1.Event": ("involvedObject", "metadata"),
    "core.v1.EventList": ("items",),
    "core.v1.FlexVolumeSource": ("driver",),
    "core.v1.GCEPersistentDiskVolumeSource": ("pdName",),
    "core.v1.GRPCAction": ("port",),
    "core.v1.GitRepoVolumeSource": ("repository",),
    "core.v1.GlusterfsVolumeSource": ("endpoints", "path"),
    "core.v1.HTTPGetAction": ("port",),
    "core.v1.HTTPHeader": ("name", "value"),
    "core.v1.HostAlias": ("ip",),
    "core.v1.HostIP": ("ip",),
    "core.v1.HostPathVolumeSource": ("path",),
    "core.v1.ISCSIVolumeSource": ("iqn", "lun", "targetPortal"),
    "core.v1.KeyToPath": ("key", "path"),
    "core.v1.LinuxContainerUser": ("gid", "uid"),
    "core.v1.NFSVolumeSource": ("path", "server"),
    "core.v1.NamespaceCondition": ("status", "type"),
    "core.v1.NamespaceList": ("items",),
    "core.v1.NodeAddress": ("address", "type"),
    "core.v1.NodeCondition": ("status", "type"),
    "core.v1.NodeList": ("items",),
    "core.v1.NodeSelector": ("nodeSelectorTerms",),
    "core.v1.NodeSelectorRequirement": ("key", "operator"),
    "core.v1.NodeSystemInfo": (
        "architecture",
        "bootID",
        "containerRuntimeVersion",
        "kernelVersion",
        "kubeProxyVersion",
        "kubeletVersion",
        "machineID",
        "operatingSystem",
        "osImage",
        "systemUUID",
    ),
    "core.v1.ObjectFieldSelector": ("fieldPath",),
    "core.v1.PersistentVolumeClaimTemplate": ("spec",),
    "core.v1.PersistentVolumeClaimVolumeSource": ("claimName",),
    "core.v1.PhotonPersistentDiskVolumeSource": ("pdID",),
    "core.v1.PodAffinityTerm": ("topologyKey",),
    "core.v1.PodCondition": ("status", "type"),
    "core.v1.PodIP": ("ip",),
    "core.v1.PodList": ("items",),
    "core.v1.PodOS": ("name",),
    "core.v1.PodReadinessGate": ("conditionType",),
    "core.v1.PodResourceClaim": ("name",),
    "core.v1.PodResourceClaimStatus": ("name",),
    "core.v1.PodSchedulingGate": ("name",),
    "core.v1.PodSpec": ("containers",),
    "core.v1.PortStatus": ("port", "protocol"),
    "core.v1.PortworxVolumeSource": ("volumeID",),
    "core.v1.PreferredSchedulingTerm": ("preference", "weight"),
    "core.v1.QuobyteVolumeSource": ("registry", "volume"),
    "core.v1.RBDVolumeSource": ("image", "monitors"),
    "core.v1.ResourceClaim": ("name",),
    "core.v1.ResourceFieldSelector": ("resource",),
    "core.v1.ResourceHealth": ("resourceID",),
    "core.v1.ResourceStatus": ("name",),
    "core.v1.ScaleIOVolumeSource": ("gateway", "secretRef", "system"),
    "core.v1.SeccompProfile": ("type",),
    "core.v1.SecretKeySelector": ("key",),
    "core.v1.SecretList": ("items",),
    "core.v1.ServiceAccountTokenProjection": ("path",),
    "core.v1.ServiceList": ("items",),
    "core.v1.ServicePort": ("port",),
    "core.v1.SleepAction": ("seconds",),
    "core.v1.Sysctl": ("name", "value"),
    "core.v1.TCPSocketAction": ("port",),
    "core.v1.Taint": ("effect", "key"),
    "core.v1.TopologySpreadConstraint": ("maxSkew", "topologyKey", "whenUnsatisfiable"),
    "core.v1.TypedLocalObjectReference": ("kind", "name"),
    "core.v1.TypedObjectReference": ("kind", "name"),
    "core.v1.Volume": ("name",),
    "core.v1.VolumeDevice": ("devicePath", "name"),
    "core.v1.VolumeMount": ("mountPath", "name"),
    "core.v1.VolumeMountStatus": ("mountPath", "name"),
    "core.v1.VsphereVirtualDiskVolumeSource": ("volumePath",),
    "core.v1.WeightedPodAffinityTerm": ("podAffinityTerm", "weight"),
    "meta.v1.Condition": ("lastTransitionTime", "message", "reason", "status", "type"),
    "meta.v1.LabelSelectorRequirement": ("key", "operator"),
    "meta.v1.OwnerReference": ("apiVersion", "kind", "name", "uid"),
}

# Fields of newer clients' models that the served version does not have: kube-apiserver
# v1.31 rejects them as unknown under strict decoding, and explain does not list them.
NOT_IN_V1_31: dict[str, tuple[str, ...]] = {
    "apps.v1.DeploymentStatus": ("terminatingReplicas",),
    "apps.v1.ReplicaSetStatus": ("terminatingReplicas",),
    "autoscaling.v2.HPAScalingRules": ("tolerance",),
    "autoscaling.v2.HorizontalPodAutoscalerCondition": ("observedGeneration",),
    "core.v1.ClusterTrustBundleProjection": ("user",),
    "core.v1.ConfigMapVolumeSource": ("defaultUser",),
    "core.v1.Container": ("restartPolicyRules",),
    "core.v1.ContainerStatus": ("stopSignal",),
    "core.v1.DownwardAPIVolumeFile": ("user",),
    "core.v1.DownwardAPIVolumeSource": ("defaultUser",),
    "core.v1.EmptyDirVolumeSource": ("mode",),
    "core.v1.EnvVarSource": ("fileKeyRef",),
    "core.v1.EphemeralContainer": ("restartPolicyRules",),
    "core.v1.GRPCAction": ("mode",),
    "core.v1.HTTPGetAction": ("protocol",),
    "core.v1.KeyToPath": ("user",),
    "core.v1.Lifecycle": ("stopSignal",),
    "core.v1.NodeSpec": ("podPreemptionPolicy",),
    "core.v1.NodeStatus": ("declaredFeatures",),
    "core.v1.NodeSystemInfo": ("runningInUserNamespace", "swap"),
    "core.v1.PodCondition": ("observedGeneration",),
    "core.v1.PodSecurityContext": ("seLinuxChangePolicy",),
    "core.v1.PodSpec": ("evictionResponders", "hostnameOverride", "resources", "schedulingGroup"),
    "core.v1.PodStatus": (
        "allocatedResources",
        "extendedResourceClaimStatus",
        "nodeAllocatableResourceClaimStatuses",
        "observedGeneration",
        "resources",
        "volumeHealth",
    ),
    "core.v1.ProjectedVolumeSource": ("defaultUser",),
    "core.v1.ResourceHealth": ("message",),
    "core.v1.SecretVolumeSource": ("defaultUser",),
    "core.v1.ServiceAccountTokenProjection": ("user",),
    "core.v1.VolumeMount": ("bindMountOptions",),
    "core.v1.VolumeMountStatus": ("volumeStatus",),
    "core.v1.VolumeProjection": ("podCertificate",),
    "meta.v1.ListMeta": ("shardInfo",),
}

# Structs marked +structType=atomic: apply replaces them whole.
ATOMIC_STRUCTS = frozenset(
    {
        "autoscaling.v1.CrossVersionObjectReference",
        "core.v1.ConfigMapKeySelector",
        "core.v1.EvictionResponder",
        "core.v1.FileKeySelector",
        "core.v1.LocalObjectReference",
        "core.v1.NodeSelector",
        "core.v1.NodeSelectorTerm",
        "core.v1.ObjectFieldSelector",
        "core.v1.ObjectReference",
        "core.v1.ResourceFieldSelector",
        "core.v1.SecretKeySelector",
        "core.v1.TypedLocalObjectReference",
        "meta.v1.LabelSelector",
        "meta.v1.OwnerReference",
    }
)

FIELD_EXTENSIONS: dict[str, dict[str, Obj]] = {
    "apps.v1.DeploymentSpec": {
        "strategy": _ext("retainKeys"),
    },
    "apps.v1.DeploymentStatus": {
        "conditions": _ext("merge", key="type", list_type="map", map_keys=("type",)),
    },
    "apps.v1.ReplicaSetStatus": {
        "conditions": _ext("merge", key="type", list_type="map", map_keys=("type",)),
    },
    "autoscaling.v2.HPAScalingRules": {
        "policies": _ext(list_type="atomic"),
    },
    "autoscaling.v2.HorizontalPodAutoscalerSpec": {
        "metrics": _ext(list_type="atomic"),
    },
    "autoscaling.v2.HorizontalPodAutoscalerStatus": {
        "conditions": _ext("merge", key="type", list_type="map", map_keys=("type",)),
        "currentMetrics": _ext(list_type="atomic"),
    },
    "core.v1.Capabilities": {
        "add": _ext(list_type="atomic"),
        "drop": _ext(list_type="atomic"),
    },
    "core.v1.CephFSVolumeSource": {
        "monitors": _ext(list_type="atomic"),
    },
    "core.v1.ConfigMapProjection": {
        "items": _ext(list_type="atomic"),
    },
    "core.v1.ConfigMapVolumeSource": {
        "items": _ext(list_type="atomic"),
    },
    "core.v1.Container": {
        "args": _ext(list_type="atomic"),
        "command": _ext(list_type="atomic"),
        "env": _ext("merge", key="name", list_type="map", map_keys=("name",)),
        "envFrom": _ext(list_type="atomic"),
        "ports": _ext(
            "merge", key="containerPort", list_type="map", map_keys=("containerPort", "protocol")
        ),
        "resizePolicy": _ext(list_type="atomic"),
        "restartPolicyRules": _ext(list_type="atomic"),
        "volumeDevices": _ext("merge", key="devicePath", list_type="map", map_keys=("devicePath",)),
        "volumeMounts": _ext("merge", key="mountPath", list_type="map", map_keys=("mountPath",)),
    },
    "core.v1.ContainerImage": {
        "names": _ext(list_type="atomic"),
    },
    "core.v1.ContainerRestartRuleOnExitCodes": {
        "values": _ext(list_type="set"),
    },
    "core.v1.ContainerStatus": {
        "allocatedResourcesStatus": _ext("merge", key="name", list_type="map", map_keys=("name",)),
        "volumeMounts": _ext("merge", key="mountPath", list_type="map", map_keys=("mountPath",)),
    },
    "core.v1.DownwardAPIProjection": {
        "items": _ext(list_type="atomic"),
    },
    "core.v1.DownwardAPIVolumeSource": {
        "items": _ext(list_type="atomic"),
    },
    "core.v1.EphemeralContainer": {
        "args": _ext(list_type="atomic"),
        "command": _ext(list_type="atomic"),
        "env": _ext("merge", key="name", list_type="map", map_keys=("name",)),
        "envFrom": _ext(list_type="atomic"),
        "ports": _ext(
            "merge", key="containerPort", list_type="map", map_keys=("containerPort", "protocol")
        ),
        "resizePolicy": _ext(list_type="atomic"),
        "restartPolicyRules": _ext(list_type="atomic"),
        "volumeDevices": _ext("merge", key="devicePath", list_type="map", map_keys=("devicePath",)),
        "volumeMounts": _ext("merge", key="mountPath", list_type="map", map_keys=("mountPath",)),
    },
    "core.v1.ExecAction": {
        "command": _ext(list_type="atomic"),
    },
    "core.v1.FCVolumeSource": {
        "targetWWNs": _ext(list_type="atomic"),
        "wwids": _ext(list_type="atomic"),
    },
    "core.v1.HTTPGetAction": {
        "httpHeaders": _ext(list_type="atomic"),
    },
    "core.v1.HostAlias": {
        "hostnames": _ext(list_type="atomic"),
    },
    "core.v1.ISCSIVolumeSource": {
        "portals": _ext(list_type="atomic"),
    },
    "core.v1.LinuxContainerUser": {
        "supplementalGroups": _ext(list_type="atomic"),
    },
    "core.v1.LoadBalancerIngress": {
        "ports": _ext(list_type="atomic"),
    },
    "core.v1.LoadBalancerStatus": {
        "ingress": _ext(list_type="atomic"),
    },
    "core.v1.NamespaceSpec": {
        "finalizers": _ext(list_type="atomic"),
    },
    "core.v1.NamespaceStatus": {
        "conditions": _ext("merge", key="type", list_type="map", map_keys=("type",)),
    },
    "core.v1.NodeAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": _ext(list_type="atomic"),
    },
    "core.v1.NodeAllocatableResourceClaimStatus": {
        "containers": _ext(list_type="set"),
        "mapping": _ext("merge", key="name", list_type="map", map_keys=("name",)),
        "overhead": _ext("merge", key="name", list_type="map", map_keys=("name",)),
    },
    "core.v1.NodePodPreemptionPolicy": {
        "disableResizePreemption": _ext(list_type="set"),
    },
    "core.v1.NodeSelector": {
        "nodeSelectorTerms": _ext(list_type="atomic"),
    },
    "core.v1.NodeSelectorRequirement": {
        "values": _ext(list_type="atomic"),
    },
    "core.v1.NodeSelectorTerm": {
        "matchExpressions": _ext(list_type="atomic"),
        "matchFields": _ext(list_type="atomic"),
    },
    "core.v1.NodeSpec": {
        "podCIDRs": _ext("merge", list_type="set"),
        "taints": _ext(list_type="atomic"),
    },
    "core.v1.NodeStatus": {
        "addresses": _ext("merge", key="type", list_type="map", map_keys=("type",)),
        "conditions": _ext("merge", key="type", list_type="map", map_keys=("type",)),
        "declaredFeatures": _ext(list_type="atomic"),
        "images": _ext(list_type="atomic"),
        "runtimeHandlers": _ext(list_type="atomic"),
        "volumesAttached": _ext(list_type="atomic"),
        "volumesInUse": _ext(list_type="atomic"),
    },
    "core.v1.PersistentVolumeClaimSpec": {
        "accessModes": _ext(list_type="atomic"),
    },
    "core.v1.PodAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": _ext(list_type="atomic"),
        "requiredDuringSchedulingIgnoredDuringExecution": _ext(list_type="atomic"),
    },
    "core.v1.PodAffinityTerm": {
        "matchLabelKeys": _ext(list_type="atomic"),
        "mismatchLabelKeys": _ext(list_type="atomic"),
        "namespaces": _ext(list_type="atomic"),
    },
    "core.v1.PodAntiAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": _ext(list_type="atomic"),
        "requiredDuringSchedulingIgnoredDuringExecution": _ext(list_type="atomic"),
    },
    "core.v1.PodDNSConfig": {
        "nameservers": _ext(list_type="atomic"),
        "options": _ext(list_type="atomic"),
        "searches": _ext(list_type="atomic"),
    },
    "core.v1.PodExtendedResourceClaimStatus": {
        "requestMappings": _ext(list_type="atomic"),
    },
    "core.v1.PodSecurityContext": {
        "supplementalGroups": _ext(list_type="atomic"),
        "sysctls": _ext(list_type="atomic"),
    },
    "core.v1.PodSpec": {
        "containers": _ext("merge", key="name", list_type="map", map_keys=("name",)),
        "ephemeralContainers": _ext("merge", key="name", list_type="map", map_keys=("name",)),
        "evictionResponders": _ext("merge", key="name", list_type="map", map_keys=("name",)),
        "hostAliases": _ext("merge", key="ip", list_type="map", map_keys=("ip",)),
        "imagePullSecrets": _ext("merge", key="name", list_type="map", map_keys=("name",)),
        "initContainers": _ext("merge", key="name", list_type="map", map_keys=("name",)),
        "nodeSelector": _ext(map_type="atomic"),
        "readinessGates": _ext(list_type="atomic"),
        "resourceClaims": _ext("merge,retainKeys", key="name", list_type="map", map_keys=("name",)),
        "schedulingGates": _ext("merge", key="name", list_type="map", map_keys=("name",)),
        "tolerations": _ext(list_type="atomic"),
        "topologySpreadConstraints": _ext(
            "merge",
            key="topologyKey",
            list_type="map",
            map_keys=("topologyKey", "whenUnsatisfiable"),
        ),
        "volumes": _ext("merge,retainKeys", key="name", list_type="map", map_keys=("name",)),
    },
    "core.v1.PodStatus": {
        "conditions": _ext("merge", key="type", list_type="map", map_keys=("type",)),
        "containerStatuses": _ext(list_type="atomic"),
        "ephemeralContainerStatuses": _ext(list_type="atomic"),
        "hostIPs": _ext("merge", key="ip", list_type="atomic"),
        "initContainerStatuses": _ext(list_type="atomic"),
        "nodeAllocatableResourceClaimStatuses": _ext(
            "merge", key="resourceClaimName", list_type="map", map_keys=("resourceClaimName",)
        ),
        "podIPs": _ext("merge", key="ip", list_type="map", map_keys=("ip",)),
        "resourceClaimStatuses": _ext(
            "merge,retainKeys", key="name", list_type="map", map_keys=("name",)
        ),
        "volumeHealth": _ext(list_type="map", map_keys=("name",)),
    },
    "core.v1.PodVolumeHealth": {
        "healthConditions": _ext(
            "merge", key="status", list_type="map", map_keys=("status", "reason")
        ),
    },
    "core.v1.ProjectedVolumeSource": {
        "sources": _ext(list_type="atomic"),
    },
    "core.v1.RBDVolumeSource": {
        "monitors": _ext(list_type="atomic"),
    },
    "core.v1.ResourceRequirements": {
        "claims": _ext(list_type="map", map_keys=("name",)),
    },
    "core.v1.ResourceStatus": {
        "resources": _ext(list_type="map", map_keys=("resourceID",)),
    },
    "core.v1.SecretProjection": {
        "items": _ext(list_type="atomic"),
    },
    "core.v1.SecretVolumeSource": {
        "items": _ext(list_type="atomic"),
    },
    "core.v1.ServiceSpec": {
        "clusterIPs": _ext(list_type="atomic"),
        "externalIPs": _ext(list_type="atomic"),
        "ipFamilies": _ext(list_type="atomic"),
        "loadBalancerSourceRanges": _ext(list_type="atomic"),
        "ports": _ext("merge", key="port", list_type="map", map_keys=("port", "protocol")),
        "selector": _ext(map_type="atomic"),
    },
    "core.v1.ServiceStatus": {
        "conditions": _ext("merge", key="type", list_type="map", map_keys=("type",)),
    },
    "core.v1.TopologySpreadConstraint": {
        "matchLabelKeys": _ext(list_type="atomic"),
    },
    "core.v1.VolumeMount": {
        "bindMountOptions": _ext(list_type="set"),
    },
    "meta.v1.LabelSelector": {
        "matchExpressions": _ext(list_type="atomic"),
    },
    "meta.v1.LabelSelectorRequirement": {
        "values": _ext(list_type="atomic"),
    },
    "meta.v1.ObjectMeta": {
        "finalizers": _ext("merge", list_type="set"),
        "managedFields": _ext(list_type="atomic"),
        "ownerReferences": _ext("merge", key="uid", list_type="map", map_keys=("uid",)),
    },
}
