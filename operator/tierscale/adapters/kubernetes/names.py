"""The names tierscale writes into a cluster, in one place (the Helm chart and docs cite them)."""

from __future__ import annotations

from typing import Final

FIELD_MANAGER: Final = "tierscale"
"""Field manager of every write (`/scale`, pod annotations, SLOTier status, ConfigMaps):
`metadata.managedFields` then shows which fields tierscale owns, and a change of owner of
`spec.replicas` is how another writer is detected (`writers`)."""

REPORTING_CONTROLLER: Final = "tierscale.dev/operator"
"""`reportingController` of tierscale's Events."""

DELETION_COST_ANNOTATION: Final = "controller.kubernetes.io/pod-deletion-cost"
"""The ReplicaSet controller removes pods with a lower cost first (after unscheduled,
pending and not-ready pods)."""
DELETION_COST_REMOVE: Final = "-1000"
"""Cost set on the pods chosen to go before a scale-down. The pods to keep carry no
annotation (cost 0), so the chosen ones rank first."""

RESUME_ANNOTATION: Final = "tierscale.dev/resume"
"""Set on a Deployment (any value) to hand its replicas back to tierscale after a manual
change. A one-shot token: tierscale claims the replicas and removes it when it next acts
on the Deployment."""

GPU_RESOURCE: Final = "nvidia.com/gpu"
GPU_PRODUCT_LABEL: Final = "nvidia.com/gpu.product"
"""Node label (NVIDIA GPU feature discovery) naming a node's accelerator."""

AUTOSCALER_MANAGERS: Final = frozenset({"kube-controller-manager", "keda", "keda-operator"})
"""Field managers that write replicas on behalf of an object (an HPA, a KEDA
ScaledObject): judged by whether that object still targets the Deployment, so deleting
the HPA hands the replicas back without any other step."""

KEDA_GROUP: Final = "keda.sh"
KEDA_VERSION: Final = "v1alpha1"
KEDA_PLURAL: Final = "scaledobjects"
