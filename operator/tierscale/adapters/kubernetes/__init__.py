"""The Kubernetes adapter: `KubeCluster` (ClusterPort) and `ConfigMapState` (StatePort),
with in-memory fakes of both in `fake`. docs/design.md, "Kubernetes adapter", explains
the rules (field manager, `/scale` with resourceVersion, deletion cost, other writers)."""

from tierscale.adapters.kubernetes.cluster import KubeCluster
from tierscale.adapters.kubernetes.configmap_state import ConfigMapState
from tierscale.adapters.kubernetes.names import FIELD_MANAGER

__all__ = ["FIELD_MANAGER", "ConfigMapState", "KubeCluster"]
