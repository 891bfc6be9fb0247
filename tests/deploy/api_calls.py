"""The Kubernetes API calls `canary run` makes, recorded for the RBAC test.

Each entry is ``(apiGroup, resource, verb)`` with the resource as RBAC names it
(``canaries/status`` for a subresource) and the verb as RBAC names it (the `KubeClient`
methods map as get→get, list→list, watch→watch, create→create, replace→update,
patch→patch, apply→patch (+create when the object is new), delete→delete).

Where they come from (read from the code; ``test_rbac.py`` also scans the code for
calls with a literal kind so that a new one is noticed):

* the watch caches (canary/adapters/cache.py, `CACHED_KINDS`): list + watch of every
  kind a pass reads, started by the operator (canaries, gitsources) or by a pass's first
  read of the kind (`CACHE_CALLS` below).
* canary/controller/operator.py `check_crds`: get of our four CRDs (cluster-scoped).
* canary/controller/reconcile.py: get the Canary, get the target, patch the finalizer
  (``metadata.finalizers``) and ``canaries/status``.
* canary/adapters/workloads.py: get, create, update the ``-primary`` Deployment or
  DaemonSet; patch the target's replicas (DaemonSet: node selector); get HPAs and
  create/update ``<hpa>-primary``; get tracked ConfigMaps/Secrets and create, update or
  (immutable ones) delete and recreate their ``-primary`` copies; list Canaries of ours
  and of Flagger (flagger.app) in the namespace to find two Canaries on one target.
* canary/adapters/metadata.py and routers/builders/_common.py: the owner reference to
  the Canary sets ``blockOwnerDeletion``, which the OwnerReferencesPermissionEnforcement
  admission plugin allows only with ``update`` on ``canaries/finalizers``.
* canary/adapters/routers/: `ObjectStore.converge` is get + create or replace (update)
  for Services, Ingresses, Istio VirtualServices and DestinationRules, Gateway API
  HTTPRoutes (also linkerd) and SMI TrafficSplits. No router deletes or patches.
* canary/adapters/analysis.py: get MetricTemplates and the Secrets they name; the keptn
  provider gets a KeptnMetric (canary/adapters/kube_reader.py, by path). The
  externalmetrics provider's reads are granted by the user per metric name.
* canary/controller/notify.py: get AlertProviders and the Secrets they name.
* canary/controller/events.py: create Events, patch them to count repeats.
* canary/controller/gitops.py: GitSources get and ``gitsources/status`` patch; the
  Git revert reads the Flux Kustomization and GitRepository or the Argo CD Application
  that applied the target, and the Secret with the Git credentials.
* canary/controller/leader.py: the Lease ``canary-engine-leader`` in the controller's
  namespace: get, create, update (its release on shutdown is an update too).

The objects the GitSource reconciler applies from Git (server-side apply and prune) are
not in these lists: they depend on the user's repositories (docs/install.md).
`GITSOURCE_DEMO_CALLS` is what components/gitsource-apply grants for the demo.
"""

from __future__ import annotations

ApiCall = tuple[str, str, str]

GROUP = "canary.gitops.dev"

#: The watch caches: list + watch of every kind a pass reads (canary/adapters/cache.py).
CACHE_CALLS: tuple[ApiCall, ...] = tuple(
    (group, resource, verb)
    for group, resource in (
        (GROUP, "canaries"),
        (GROUP, "gitsources"),
        (GROUP, "metrictemplates"),
        (GROUP, "alertproviders"),
        ("flagger.app", "canaries"),
        ("apps", "deployments"),
        ("apps", "daemonsets"),
        ("autoscaling", "horizontalpodautoscalers"),
        ("", "services"),
        ("", "configmaps"),
        ("", "secrets"),
        ("networking.k8s.io", "ingresses"),
        ("networking.istio.io", "virtualservices"),
        ("networking.istio.io", "destinationrules"),
        ("gateway.networking.k8s.io", "httproutes"),
        ("split.smi-spec.io", "trafficsplits"),
        ("projectcontour.io", "httpproxies"),
        ("gateway.solo.io", "routetables"),
        ("gloo.solo.io", "upstreams"),
        ("traefik.io", "traefikservices"),
        ("apisix.apache.org", "apisixroutes"),
        ("appmesh.k8s.aws", "virtualnodes"),
        ("appmesh.k8s.aws", "virtualrouters"),
        ("appmesh.k8s.aws", "virtualservices"),
        ("serving.knative.dev", "services"),
        ("serving.knative.dev", "revisions"),
        ("keda.sh", "scaledobjects"),
        ("kustomize.toolkit.fluxcd.io", "kustomizations"),
        ("source.toolkit.fluxcd.io", "gitrepositories"),
        ("helm.toolkit.fluxcd.io", "helmreleases"),
        ("argoproj.io", "applications"),
    )
    for verb in ("list", "watch")
)

#: Calls in the namespaces whose Canaries the controller reconciles.
WATCHED_NAMESPACE_CALLS: tuple[ApiCall, ...] = (
    *CACHE_CALLS,
    # reconcile pass
    (GROUP, "canaries", "get"),
    (GROUP, "canaries", "patch"),  # the revertOnDeletion finalizer
    (GROUP, "canaries/status", "patch"),
    (GROUP, "canaries/finalizers", "update"),  # blockOwnerDeletion in owner references
    ("flagger.app", "canaries", "get"),  # conflicting Flagger Canaries (through the cache)
    (GROUP, "metrictemplates", "get"),
    (GROUP, "alertproviders", "get"),
    ("metrics.keptn.sh", "keptnmetrics", "get"),  # the keptn metric provider (by path)
    # GitSource reconciler and Git revert
    (GROUP, "gitsources", "get"),
    (GROUP, "gitsources/status", "patch"),
    ("kustomize.toolkit.fluxcd.io", "kustomizations", "get"),
    ("source.toolkit.fluxcd.io", "gitrepositories", "get"),
    ("argoproj.io", "applications", "get"),
    ("helm.toolkit.fluxcd.io", "helmreleases", "get"),  # targets made by helm-controller
    # keeping Flux's image automation from a failed tag
    ("image.toolkit.fluxcd.io", "imagepolicies", "get"),
    ("image.toolkit.fluxcd.io", "imagerepositories", "get"),
    ("image.toolkit.fluxcd.io", "imagerepositories", "patch"),
    # workloads: target and primary
    ("apps", "deployments", "get"),
    ("apps", "deployments", "create"),
    ("apps", "deployments", "update"),
    ("apps", "deployments", "patch"),
    ("apps", "daemonsets", "get"),
    ("apps", "daemonsets", "create"),
    ("apps", "daemonsets", "update"),
    ("apps", "daemonsets", "patch"),
    ("autoscaling", "horizontalpodautoscalers", "get"),
    ("autoscaling", "horizontalpodautoscalers", "create"),
    ("autoscaling", "horizontalpodautoscalers", "update"),
    # tracked configs and credentials
    ("", "configmaps", "get"),
    ("", "configmaps", "create"),
    ("", "configmaps", "update"),
    ("", "configmaps", "delete"),
    ("", "secrets", "get"),
    ("", "secrets", "create"),
    ("", "secrets", "update"),
    ("", "secrets", "delete"),
    # Events
    ("", "events", "create"),
    ("", "events", "patch"),
    # routers
    ("", "services", "get"),
    ("", "services", "create"),
    ("", "services", "update"),
    ("networking.k8s.io", "ingresses", "get"),
    ("networking.k8s.io", "ingresses", "create"),
    ("networking.k8s.io", "ingresses", "update"),
    ("networking.istio.io", "virtualservices", "get"),
    ("networking.istio.io", "virtualservices", "create"),
    ("networking.istio.io", "virtualservices", "update"),
    ("networking.istio.io", "destinationrules", "get"),
    ("networking.istio.io", "destinationrules", "create"),
    ("networking.istio.io", "destinationrules", "update"),
    ("gateway.networking.k8s.io", "httproutes", "get"),
    ("gateway.networking.k8s.io", "httproutes", "create"),
    ("gateway.networking.k8s.io", "httproutes", "update"),
    ("split.smi-spec.io", "trafficsplits", "get"),
    ("split.smi-spec.io", "trafficsplits", "create"),
    ("split.smi-spec.io", "trafficsplits", "update"),
    # the routers of Flagger's other providers: ObjectStore.converge (get, create, update)
    *(
        (group, resource, verb)
        for group, resource in (
            ("projectcontour.io", "httpproxies"),
            ("gateway.solo.io", "routetables"),
            ("gloo.solo.io", "upstreams"),
            ("traefik.io", "traefikservices"),
            ("apisix.apache.org", "apisixroutes"),
            ("appmesh.k8s.aws", "virtualnodes"),
            ("appmesh.k8s.aws", "virtualrouters"),
            ("appmesh.k8s.aws", "virtualservices"),
            ("kuma.io", "trafficroutes"),
            # the target Knative Service's spec.traffic (converge never creates it: it exists)
            ("serving.knative.dev", "services"),
        )
        for verb in ("get", "create", "update")
    ),
    ("kuma.io", "trafficroutes", "delete"),  # cluster-scoped: no owner reference collects it
    ("networking.k8s.io", "ingresses", "delete"),  # skipper's <ingress>-canary on finalize
    ("serving.knative.dev", "revisions", "get"),  # readiness of the Knative revisions
    # KEDA: the <so>-primary ScaledObject, and the target's paused with an annotation
    ("keda.sh", "scaledobjects", "get"),
    ("keda.sh", "scaledobjects", "create"),
    ("keda.sh", "scaledobjects", "update"),
    ("keda.sh", "scaledobjects", "patch"),
)

#: Leader election, in the controller's own namespace.
CONTROLLER_NAMESPACE = "canary-engine"
LEASE_NAME = "canary-engine-leader"
LEADER_ELECTION_CALLS: tuple[ApiCall, ...] = (
    ("coordination.k8s.io", "leases", "get"),
    ("coordination.k8s.io", "leases", "create"),
    ("coordination.k8s.io", "leases", "update"),
)

#: The start-up check, cluster-scoped, on these names only.
CRD_NAMES: tuple[str, ...] = (
    f"canaries.{GROUP}",
    f"metrictemplates.{GROUP}",
    f"alertproviders.{GROUP}",
    f"gitsources.{GROUP}",
)
STARTUP_CALLS: tuple[ApiCall, ...] = (("apiextensions.k8s.io", "customresourcedefinitions", "get"),)

#: Server-side apply (patch, and create for new objects) and prune (get, delete) of the
#: kinds in the demo manifests: what components/gitsource-apply grants.
GITSOURCE_DEMO_CALLS: tuple[ApiCall, ...] = tuple(
    (group, resource, verb)
    for group, resource in (
        ("apps", "deployments"),
        ("", "services"),
        ("", "configmaps"),
        (GROUP, "canaries"),
        (GROUP, "metrictemplates"),
        (GROUP, "alertproviders"),
    )
    for verb in ("get", "create", "patch", "delete")
)
