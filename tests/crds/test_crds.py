"""The CRD files: valid apiextensions.k8s.io/v1 objects, structural, complete w.r.t. Flagger."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import kubernetes_validate
import pytest

from analysis.spec import SUPPORTED_PROVIDER_TYPES, AnalysisSpecErrors, parse_compare
from canary.model.schema import crd_files, load_resource_schemas
from kubesandbox.apiserver import schema as sandbox_schema

from .support import CRD_DIR, CRD_NAMES, crd, jsonpath, node_at, root_schema, schema_path_of, walk

# ----------------------------------------------------------------------------- helpers

_JUNCTORS = ("allOf", "anyOf", "oneOf", "not")
_FORBIDDEN = {
    "$ref",
    "$schema",
    "id",
    "definitions",
    "dependencies",
    "patternProperties",
    "additionalItems",
}
_NOT_IN_JUNCTORS = {"type", "description", "default", "additionalProperties", "nullable"}
# Formats the API server knows (k8s.io/kube-openapi/pkg/validation/strfmt).
_FORMATS = {
    "bsonobjectid", "uri", "email", "hostname", "ipv4", "ipv6", "cidr", "mac", "uuid", "uuid3",
    "uuid4", "uuid5", "isbn", "isbn10", "isbn13", "creditcard", "ssn", "hexcolor", "rgbcolor",
    "byte", "password", "date", "duration", "datetime", "date-time", "int32", "int64", "float",
    "double",
}  # fmt: skip
_JSON_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "object": dict,
    "array": list,
}


def structural_problems(node: Any, path: str = "", *, in_junctor: bool = False) -> list[str]:
    """Kubernetes' rules for structural schemas, plus the keywords it refuses."""
    where = path or "<root>"
    if not isinstance(node, Mapping):
        return [f"{where}: a schema must be a mapping"]
    problems = [f"{where}: {key} is not allowed" for key in node if key in _FORBIDDEN]
    if node.get("uniqueItems") is True:
        problems.append(f"{where}: uniqueItems: true is not allowed")
    if in_junctor:
        problems += [
            f"{where}: {key} inside {'/'.join(_JUNCTORS)}"
            for key in node
            if key in _NOT_IN_JUNCTORS
        ]
    else:
        typed = (
            "type" in node
            or node.get("x-kubernetes-int-or-string")
            or node.get("x-kubernetes-preserve-unknown-fields")
        )
        if not typed:
            problems.append(f"{where}: no type (nor int-or-string / preserve-unknown-fields)")
    if node.get("x-kubernetes-int-or-string") and "type" in node:
        problems.append(f"{where}: int-or-string must not also set type")
    if "properties" in node and "additionalProperties" in node:
        problems.append(f"{where}: properties and additionalProperties together")
    if "additionalProperties" in node and not isinstance(node["additionalProperties"], Mapping):
        problems.append(f"{where}: additionalProperties must be a schema")
    if node.get("type") == "array" and not isinstance(node.get("items"), Mapping):
        problems.append(f"{where}: an array needs one items schema")
    if "format" in node and node["format"] not in _FORMATS:
        problems.append(f"{where}: unknown format {node['format']!r}")
    if "default" in node and node.get("type") in _JSON_TYPES:
        if not isinstance(node["default"], _JSON_TYPES[node["type"]]):
            problems.append(f"{where}: default {node['default']!r} is not a {node['type']}")
        if node.get("enum") and node["default"] not in node["enum"]:
            problems.append(f"{where}: default not in enum")
    for name, sub in (node.get("properties") or {}).items():
        problems += structural_problems(
            sub, f"{path}.{name}" if path else name, in_junctor=in_junctor
        )
    for key, suffix in (("items", "[]"), ("additionalProperties", "{}")):
        if isinstance(node.get(key), Mapping):
            problems += structural_problems(node[key], path + suffix, in_junctor=in_junctor)
    declared = set(node.get("properties") or {})
    for junctor in _JUNCTORS:
        if junctor not in node:
            continue
        alternatives = node[junctor] if isinstance(node[junctor], list) else [node[junctor]]
        for alternative in alternatives:
            problems += structural_problems(alternative, f"{path}({junctor})", in_junctor=True)
            for name in alternative.get("required", []) + list(alternative.get("properties") or {}):
                if name not in declared:
                    problems.append(
                        f"{where}: {junctor} mentions {name!r}, which is not a declared property"
                    )
    return problems


def version(doc: Mapping[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = doc["spec"]["versions"][0]
    return result


# ----------------------------------------------------------------------------- the objects


class TestCrdObjects:
    def test_crd_files_lists_the_four_crds(self) -> None:
        assert sorted(p.stem for p in crd_files()) == sorted(CRD_NAMES)
        assert all(p.parent == CRD_DIR for p in crd_files())

    @pytest.mark.parametrize("name", CRD_NAMES)
    def test_valid_customresourcedefinition_for_kubernetes(self, name: str) -> None:
        # strict: unknown keys anywhere in the CRD (a misspelt x-kubernetes-... included) fail.
        kubernetes_validate.validate(crd(name), "1.37.0", strict=True)

    def test_the_validator_would_catch_a_misspelt_extension(self) -> None:
        broken = copy.deepcopy(crd("canary"))
        root_schema(broken)["properties"]["status"]["x-kubernetes-preserve-unkown-fields"] = True
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, "1.37.0", strict=True)

    @pytest.mark.parametrize(
        ("name", "kind", "plural", "short_names"),
        [
            ("canary", "Canary", "canaries", []),
            ("metrictemplate", "MetricTemplate", "metrictemplates", []),
            ("alertprovider", "AlertProvider", "alertproviders", []),
            ("gitsource", "GitSource", "gitsources", ["gs"]),
        ],
    )
    def test_names_group_version_scope(
        self, name: str, kind: str, plural: str, short_names: list[str]
    ) -> None:
        doc = crd(name)
        spec = doc["spec"]
        assert doc["metadata"]["name"] == f"{plural}.canary.gitops.dev"
        assert spec["group"] == "canary.gitops.dev"
        assert spec["scope"] == "Namespaced"
        assert spec["names"]["kind"] == kind
        assert spec["names"]["listKind"] == f"{kind}List"
        assert spec["names"]["plural"] == plural
        assert spec["names"]["singular"] == kind.lower()
        assert spec["names"].get("shortNames", []) == short_names
        assert "canary-engine" in spec["names"]["categories"]
        v = version(doc)
        assert (v["name"], v["served"], v["storage"]) == ("v1beta1", True, True)
        assert v["subresources"] == {"status": {}}

    def test_load_resource_schemas_indexes_by_api_version_and_kind(self) -> None:
        schemas = load_resource_schemas()
        assert sorted(schemas) == [
            ("canary.gitops.dev/v1beta1", kind)
            for kind in ("AlertProvider", "Canary", "GitSource", "MetricTemplate")
        ]
        assert schemas[("canary.gitops.dev/v1beta1", "Canary")].plural == "canaries"


class TestStructural:
    @pytest.mark.parametrize("name", CRD_NAMES)
    def test_schema_is_structural(self, name: str) -> None:
        assert structural_problems(root_schema(crd(name))) == []

    def test_the_checker_finds_untyped_fields_and_typed_junctors(self) -> None:
        bad = {
            "type": "object",
            "properties": {"a": {"description": "no type"}, "b": {"type": "string"}},
            "oneOf": [{"required": ["b"], "type": "object"}, {"required": ["c"]}],
        }
        problems = structural_problems(bad)
        assert any(p.startswith("a: no type") for p in problems)
        assert any("type inside" in p for p in problems)
        assert any("'c', which is not a declared property" in p for p in problems)

    @pytest.mark.parametrize("name", CRD_NAMES)
    def test_status_preserves_unknown_fields_for_kopf(self, name: str) -> None:
        status = root_schema(crd(name))["properties"]["status"]
        assert status.get("x-kubernetes-preserve-unknown-fields") is True

    @pytest.mark.parametrize("name", CRD_NAMES)
    def test_metadata_is_left_to_objectmeta(self, name: str) -> None:
        assert root_schema(crd(name))["properties"]["metadata"] == {"type": "object"}

    def test_canary_analysis_is_the_same_schema_as_analysis(self) -> None:
        spec = root_schema(crd("canary"))["properties"]["spec"]["properties"]
        analysis, deprecated = dict(spec["analysis"]), dict(spec["canaryAnalysis"])
        analysis.pop("description")
        deprecated.pop("description")
        assert analysis == deprecated


# ----------------------------------------------------------------------------- Flagger's API


# Every field of Flagger's v1beta1 API (reference/flagger.md section 1), with the type we declare.
FLAGGER_CANARY_FIELDS = {
    "spec.provider": "string",
    "spec.metricsServer": "string",
    "spec.targetRef.apiVersion": "string",
    "spec.targetRef.kind": "string",
    "spec.targetRef.name": "string",
    "spec.autoscalerRef.apiVersion": "string",
    "spec.autoscalerRef.kind": "string",
    "spec.autoscalerRef.name": "string",
    "spec.autoscalerRef.primaryScalerQueries{}": "string",
    "spec.autoscalerRef.primaryScalerReplicas.minReplicas": "integer",
    "spec.autoscalerRef.primaryScalerReplicas.maxReplicas": "integer",
    "spec.ingressRef.name": "string",
    "spec.routeRef.name": "string",
    "spec.upstreamRef.name": "string",
    "spec.upstreamRef.namespace": "string",
    "spec.service.name": "string",
    "spec.service.port": "integer",
    "spec.service.portName": "string",
    "spec.service.targetPort": "int-or-string",
    "spec.service.appProtocol": "string",
    "spec.service.trafficDistribution": "string",
    "spec.service.portDiscovery": "boolean",
    "spec.service.headless": "boolean",
    "spec.service.timeout": "string",
    "spec.service.backendTimeout": "string",
    "spec.service.gateways[]": "string",
    "spec.service.gatewayRefs[].name": "string",
    "spec.service.gatewayRefs[].namespace": "string",
    "spec.service.gatewayRefs[].group": "string",
    "spec.service.gatewayRefs[].kind": "string",
    "spec.service.gatewayRefs[].sectionName": "string",
    "spec.service.gatewayRefs[].port": "integer",
    "spec.service.hosts[]": "string",
    "spec.service.delegation": "boolean",
    "spec.service.trafficPolicy": "object",
    "spec.service.trafficPolicy.loadBalancer": "object",
    "spec.service.trafficPolicy.connectionPool": "object",
    "spec.service.trafficPolicy.outlierDetection": "object",
    "spec.service.trafficPolicy.tls": "object",
    "spec.service.match[].uri.prefix": "string",
    "spec.service.match[].headers{}.exact": "string",
    "spec.service.match[].queryParams{}.regex": "string",
    "spec.service.match[].withoutHeaders{}.exact": "string",
    "spec.service.match[].sourceLabels{}": "string",
    "spec.service.match[].ignoreUriCase": "boolean",
    "spec.service.rewrite.uri": "string",
    "spec.service.rewrite.authority": "string",
    "spec.service.rewrite.type": "string",
    "spec.service.retries.attempts": "integer",
    "spec.service.retries.perTryTimeout": "string",
    "spec.service.retries.retryOn": "string",
    "spec.service.headers.request.set{}": "string",
    "spec.service.headers.request.add{}": "string",
    "spec.service.headers.request.remove[]": "string",
    "spec.service.headers.response.set{}": "string",
    "spec.service.mirror[].backendRef.name": "string",
    "spec.service.corsPolicy.allowOrigin[]": "string",
    "spec.service.corsPolicy.allowOrigins[].exact": "string",
    "spec.service.corsPolicy.allowMethods[]": "string",
    "spec.service.corsPolicy.allowHeaders[]": "string",
    "spec.service.corsPolicy.exposeHeaders[]": "string",
    "spec.service.corsPolicy.maxAge": "string",
    "spec.service.corsPolicy.allowCredentials": "boolean",
    "spec.service.meshName": "string",
    "spec.service.backends[]": "string",
    "spec.service.apex.labels{}": "string",
    "spec.service.apex.annotations{}": "string",
    "spec.service.primary.labels{}": "string",
    "spec.service.canary.annotations{}": "string",
    "spec.service.unmanagedMetadata.annotations[]": "string",
    "spec.service.unmanagedMetadata.labels[]": "string",
    "spec.analysis.interval": "string",
    "spec.analysis.iterations": "integer",
    "spec.analysis.threshold": "integer",
    "spec.analysis.maxWeight": "integer",
    "spec.analysis.stepWeight": "integer",
    "spec.analysis.stepWeights[]": "integer",
    "spec.analysis.stepWeightPromotion": "integer",
    "spec.analysis.mirror": "boolean",
    "spec.analysis.mirrorWeight": "integer",
    "spec.analysis.match[].headers{}.suffix": "string",
    "spec.analysis.primaryReadyThreshold": "integer",
    "spec.analysis.canaryReadyThreshold": "integer",
    "spec.analysis.metrics[].name": "string",
    "spec.analysis.metrics[].interval": "string",
    "spec.analysis.metrics[].threshold": "number",
    "spec.analysis.metrics[].thresholdRange.min": "number",
    "spec.analysis.metrics[].thresholdRange.max": "number",
    "spec.analysis.metrics[].query": "string",
    "spec.analysis.metrics[].templateRef.name": "string",
    "spec.analysis.metrics[].templateRef.namespace": "string",
    "spec.analysis.metrics[].templateRef.apiVersion": "string",
    "spec.analysis.metrics[].templateRef.kind": "string",
    "spec.analysis.metrics[].templateVariables{}": "string",
    "spec.analysis.webhooks[].type": "string",
    "spec.analysis.webhooks[].name": "string",
    "spec.analysis.webhooks[].url": "string",
    "spec.analysis.webhooks[].muteAlert": "boolean",
    "spec.analysis.webhooks[].timeout": "string",
    "spec.analysis.webhooks[].metadata{}": "string",
    "spec.analysis.webhooks[].retries": "integer",
    "spec.analysis.webhooks[].disableTLS": "boolean",
    "spec.analysis.alerts[].name": "string",
    "spec.analysis.alerts[].severity": "string",
    "spec.analysis.alerts[].providerRef.name": "string",
    "spec.analysis.alerts[].providerRef.namespace": "string",
    "spec.analysis.sessionAffinity.cookieName": "string",
    "spec.analysis.sessionAffinity.primaryCookieName": "string",
    "spec.analysis.sessionAffinity.maxAge": "integer",
    "spec.analysis.sessionAffinity.domain": "string",
    "spec.analysis.sessionAffinity.httpOnly": "boolean",
    "spec.analysis.sessionAffinity.partitioned": "boolean",
    "spec.analysis.sessionAffinity.path": "string",
    "spec.analysis.sessionAffinity.sameSite": "string",
    "spec.analysis.sessionAffinity.secure": "boolean",
    "spec.canaryAnalysis.stepWeights[]": "integer",
    "spec.progressDeadlineSeconds": "integer",
    "spec.skipAnalysis": "boolean",
    "spec.revertOnDeletion": "boolean",
    "spec.suspend": "boolean",
    "status.phase": "string",
    "status.canaryWeight": "integer",
    "status.failedChecks": "integer",
    "status.iterations": "integer",
    "status.lastAppliedSpec": "string",
    "status.lastPromotedSpec": "string",
    "status.trackedConfigs{}": "string",
    "status.lastTransitionTime": "string",
    "status.conditions[].type": "string",
    "status.conditions[].status": "string",
    "status.conditions[].reason": "string",
    "status.conditions[].message": "string",
    "status.conditions[].lastUpdateTime": "string",
    "status.conditions[].lastTransitionTime": "string",
    "status.sessionAffinityCookie": "string",
    "status.previousSessionAffinityCookie": "string",
    "status.primarySessionAffinityCookie": "string",
}

OUR_CANARY_FIELDS = {
    "spec.analysis.metrics[].compare": "object",
    "spec.canaryAnalysis.metrics[].compare": "object",
    "spec.analysis.metrics[].dryRun": "boolean",
    "spec.canaryAnalysis.metrics[].dryRun": "boolean",
    "spec.gitops.source.kind": "string",
    "spec.gitops.source.apiVersion": "string",
    "spec.gitops.source.name": "string",
    "spec.gitops.source.namespace": "string",
    "spec.gitops.paths[]": "string",
    "status.observedGeneration": "integer",
    "status.lastGoodRevision": "string",
    "status.currentRevision": "string",
    "status.gitRevert.state": "string",
    "status.gitRevert.goodRevision": "string",
    "status.gitRevert.badRevision": "string",
    "status.gitRevert.commit": "string",
    "status.gitRevert.message": "string",
    "status.gitRevert.attempts": "integer",
    "status.gitRevert.lastAttemptTime": "string",
    "status.analysis[].name": "string",
    "status.analysis[].outcome": "string",
    "status.analysis[].value": "number",
    "status.analysis[].threshold": "string",
    "status.analysis[].primaryValue": "number",
    "status.analysis[].summary": "string",
    "status.analysis[].time": "string",
    "status.analysis[].advisory": "boolean",
    "status.analysis[].stalled": "boolean",
    "status.analysisHistory[].revision": "string",
    "status.analysisHistory[].started": "string",
    "status.analysisHistory[].ended": "string",
    "status.analysisHistory[].result": "string",
    "status.analysisHistory[].ticks[].time": "string",
    "status.analysisHistory[].ticks[].weight": "integer",
    "status.analysisHistory[].ticks[].verdicts[].name": "string",
    "status.analysisHistory[].ticks[].verdicts[].outcome": "string",
    "status.analysisHistory[].ticks[].verdicts[].value": "number",
    "status.analysisHistory[].ticks[].verdicts[].samples": "integer",
    "status.analysisHistory[].ticks[].verdicts[].warmingUp": "boolean",
    "status.inconclusiveChecks": "integer",
    "status.stalled": "string",
    "status.handledCommands{}": "string",
    "status.message": "string",
    "status.pendingAlerts[].key": "string",
    "status.pendingAlerts[].kind": "string",
    "status.pendingAlerts[].created": "string",
    "status.pendingAlerts[].destinations[]": "string",
    "status.pendingAlerts[].alert": "object",
}

OTHER_FIELDS = {
    "metrictemplate": {
        "spec.provider.type": "string",
        "spec.provider.address": "string",
        "spec.provider.headers{}[]": "string",
        "spec.provider.secretRef.name": "string",
        "spec.provider.region": "string",
        "spec.provider.insecureSkipVerify": "boolean",
        "spec.query": "string",
    },
    "alertprovider": {
        "spec.type": "string",
        "spec.channel": "string",
        "spec.username": "string",
        "spec.address": "string",
        "spec.proxy": "string",
        "spec.secretRef.name": "string",
        "spec.messageTemplate": "string",
        "spec.timeout": "string",
    },
    "gitsource": {
        "spec.url": "string",
        "spec.branch": "string",
        "spec.path": "string",
        "spec.interval": "string",
        "spec.timeout": "string",
        "spec.suspend": "boolean",
        "spec.prune": "boolean",
        "spec.secretRef.name": "string",
        "spec.commitAuthor.name": "string",
        "spec.commitAuthor.email": "string",
        "status.lastAppliedRevision": "string",
        "status.lastAttemptedRevision": "string",
        "status.inventory[].apiVersion": "string",
        "status.inventory[].kind": "string",
        "status.inventory[].namespace": "string",
        "status.inventory[].name": "string",
        "status.conditions[].type": "string",
        "status.observedGeneration": "integer",
    },
}


def declared_type(node: Mapping[str, Any]) -> str:
    if node.get("x-kubernetes-int-or-string"):
        return "int-or-string"
    return str(node.get("type"))


def field_cases() -> list[tuple[str, str, str]]:
    cases = [
        ("canary", path, t) for path, t in {**FLAGGER_CANARY_FIELDS, **OUR_CANARY_FIELDS}.items()
    ]
    cases += [
        (name, path, t) for name, fields in OTHER_FIELDS.items() for path, t in fields.items()
    ]
    return cases


class TestFields:
    @pytest.mark.parametrize(("name", "path", "expected"), field_cases())
    def test_field_is_declared_with_its_json_name_and_type(
        self, name: str, path: str, expected: str
    ) -> None:
        assert declared_type(node_at(root_schema(crd(name)), path)) == expected

    def test_every_canary_field_has_a_description(self) -> None:
        spec = root_schema(crd("canary"))["properties"]["spec"]
        undocumented = [
            p
            for p, node in walk(spec, "spec")
            if "properties" in node and not node.get("description")
        ]
        assert undocumented == []

    def test_gitops_revert_takes_a_boolean_or_an_object_checked_by_the_controller(self) -> None:
        revert = node_at(root_schema(crd("canary")), "spec.gitops.revert")
        assert "type" not in revert
        assert revert["x-kubernetes-preserve-unknown-fields"] is True
        assert "pullRequest" in revert["description"]

    def test_provider_enum_is_exactly_flaggers(self) -> None:
        provider = node_at(root_schema(crd("canary")), "spec.provider")
        assert set(provider["enum"]) == {
            "apisix", "appmesh", "appmesh:v1beta2", "contour", "gatewayapi:v1", "gatewayapi:v1beta1",
            "gloo", "istio", "knative", "kubernetes", "kuma", "linkerd", "nginx", "osm", "skipper",
            "smi:v1alpha1", "smi:v1alpha2", "smi:v1alpha3", "traefik",
        }  # fmt: skip

    def test_closed_lists(self) -> None:
        canary = root_schema(crd("canary"))
        assert node_at(canary, "spec.analysis.alerts[].severity")["enum"] == [
            "",
            "info",
            "warn",
            "error",
        ]
        assert set(node_at(canary, "spec.analysis.webhooks[].type")["enum"]) == {
            "", "confirm-rollout", "pre-rollout", "rollout", "confirm-promotion", "post-rollout",
            "event", "rollback", "confirm-traffic-increase",
        }  # fmt: skip
        assert set(node_at(canary, "status.phase")["enum"]) >= {
            "Terminating",
            "Terminated",
            "Succeeded",
            "Failed",
        }
        assert node_at(canary, "spec.gitops.source.kind")["enum"] == [
            "GitSource",
            "Kustomization",
            "Application",
        ]
        alert_types = node_at(root_schema(crd("alertprovider")), "spec.type")["enum"]
        assert alert_types == ["slack", "msteams", "discord", "rocket", "gchat", "generic"]
        metric_types = node_at(root_schema(crd("metrictemplate")), "spec.provider.type")["enum"]
        assert set(metric_types) == set(SUPPORTED_PROVIDER_TYPES) and "web" in metric_types

    def test_strategies_are_flaggers_one_of(self) -> None:
        analysis = node_at(root_schema(crd("canary")), "spec.analysis")
        assert [alt["required"] for alt in analysis["oneOf"]] == [
            ["interval", "threshold", "iterations"],
            ["interval", "threshold", "stepWeight"],
            ["interval", "threshold", "stepWeights"],
        ]

    @pytest.mark.parametrize(
        ("name", "path", "required"),
        [
            ("canary", "spec", ["targetRef"]),
            ("canary", "spec.targetRef", ["kind", "name"]),
            ("canary", "spec.service", ["port"]),
            ("canary", "spec.analysis.metrics[]", ["name"]),
            ("canary", "spec.analysis.webhooks[]", ["name", "url"]),
            ("canary", "spec.analysis.alerts[]", ["name", "providerRef"]),
            ("canary", "spec.gitops.source", ["kind", "name"]),
            ("metrictemplate", "spec", ["provider", "query"]),
            ("alertprovider", "spec", ["type"]),
            ("gitsource", "spec", ["url"]),
        ],
    )
    def test_required_fields(self, name: str, path: str, required: list[str]) -> None:
        assert node_at(root_schema(crd(name)), path)["required"] == required

    @pytest.mark.parametrize(
        ("name", "path", "default"),
        [
            ("gitsource", "spec.branch", "main"),
            ("gitsource", "spec.path", ""),
            ("gitsource", "spec.interval", "1m"),
            ("gitsource", "spec.prune", True),
        ],
    )
    def test_defaults(self, name: str, path: str, default: object) -> None:
        assert node_at(root_schema(crd(name)), path)["default"] == default

    @pytest.mark.parametrize("path", ["status", "status.analysis[]"])
    def test_open_ended_nodes_preserve_unknown_fields(self, path: str) -> None:
        assert (
            node_at(root_schema(crd("canary")), path)["x-kubernetes-preserve-unknown-fields"]
            is True
        )


# ----------------------------------------------------------------------------- compare's bounds

# Values on and on either side of every bound of metrics[].compare in analysis/_spec/compare.py.
COMPARE_VALUES: dict[str, tuple[Any, ...]] = {
    "alpha": (-0.1, 0, 1e-9, 0.01, 0.4999, 0.5, 0.6),
    "allowedIncrease": (0.999, 1, 1.1),
    "minDifference": (-0.01, 0, 0.1),
    "minSampleSize": (0, 1, 100, 2.5),
    "maxInconclusive": (-1, 0, 5),
    "detectIncrease": (0.5, 1, 1.0001, 2),
    "quantile": (0.4999, 0.5, 0.99, 0.9999, 1, 1.5),
    "warmup": ("0s", "90s", "1m30s", "500ms", "", "90", "1.5m", "2M"),
    "retries": (-1, 0, 3, 100, 101, 2.5, True, "3"),
}


class TestCompareBounds:
    """The API server refuses exactly the `compare` values the controller's parser refuses.

    The sandbox's validator applies the CRD as Kubernetes does (OpenAPI v3.0: an exclusive
    bound is a boolean next to minimum/maximum). A value the parser refuses but the CRD lets
    through would be stored and then reported by the controller, not by `kubectl apply`.
    """

    @pytest.mark.parametrize(
        ("field", "value"),
        [(field, value) for field, values in COMPARE_VALUES.items() for value in values],
    )
    def test_the_crd_and_the_parser_agree(self, field: str, value: Any) -> None:
        compare = node_at(root_schema(crd("canary")), "spec.analysis.metrics[].compare")
        crd_refuses = bool(sandbox_schema.validate({field: value}, compare))
        try:
            parse_compare({field: value}, "compare", metric_name="request-success-rate")
        except AnalysisSpecErrors:
            parser_refuses = True
        else:
            parser_refuses = False
        assert crd_refuses == parser_refuses


# ----------------------------------------------------------------------------- printer columns

SAMPLE_CANARY = {
    "apiVersion": "canary.gitops.dev/v1beta1",
    "kind": "Canary",
    "metadata": {"name": "podinfo", "creationTimestamp": "2025-01-01T00:00:00Z"},
    "spec": {
        "suspend": False,
        "analysis": {
            "interval": "1m",
            "mirror": True,
            "stepWeight": 10,
            "stepWeights": [1, 5],
            "maxWeight": 50,
        },
    },
    "status": {
        "phase": "Progressing",
        "canaryWeight": 20,
        "failedChecks": 1,
        "lastTransitionTime": "2025-01-01T00:05:00Z",
        "currentRevision": "main@sha1:abc",
    },
}
SAMPLE_GITSOURCE = {
    "metadata": {"name": "apps", "creationTimestamp": "2025-01-01T00:00:00Z"},
    "spec": {"url": "https://git.example.com/apps.git", "branch": "main"},
    "status": {
        "lastAppliedRevision": "main@sha1:abc",
        "conditions": [
            {"type": "Reconciling", "status": "False"},
            {"type": "Ready", "status": "True"},
        ],
    },
}
SAMPLES = {"canary": SAMPLE_CANARY, "gitsource": SAMPLE_GITSOURCE}


class TestPrinterColumns:
    def test_canary_columns_match_the_design(self) -> None:
        columns = {
            c["name"]: (c["jsonPath"], c.get("priority", 0))
            for c in version(crd("canary"))["additionalPrinterColumns"]
        }
        assert columns == {
            "Status": (".status.phase", 0),
            "Weight": (".status.canaryWeight", 0),
            "FailedChecks": (".status.failedChecks", 0),
            "Interval": (".spec.analysis.interval", 0),
            "LastTransitionTime": (".status.lastTransitionTime", 0),
            "Suspended": (".spec.suspend", 1),
            "Mirror": (".spec.analysis.mirror", 1),
            "StepWeight": (".spec.analysis.stepWeight", 1),
            "StepWeights": (".spec.analysis.stepWeights", 1),
            "MaxWeight": (".spec.analysis.maxWeight", 1),
            "Revision": (".status.currentRevision", 1),
        }

    def test_gitsource_columns(self) -> None:
        names = [c["name"] for c in version(crd("gitsource"))["additionalPrinterColumns"]]
        assert names == ["URL", "Branch", "Revision", "Ready", "Age"]

    @pytest.mark.parametrize("name", sorted(SAMPLES))
    def test_every_column_resolves_on_a_sample_object(self, name: str) -> None:
        for column in version(crd(name))["additionalPrinterColumns"]:
            assert jsonpath(SAMPLES[name], column["jsonPath"]) != [], column

    def test_ready_column_picks_the_ready_condition(self) -> None:
        column = next(
            c for c in version(crd("gitsource"))["additionalPrinterColumns"] if c["name"] == "Ready"
        )
        assert jsonpath(SAMPLE_GITSOURCE, column["jsonPath"]) == ["True"]

    @pytest.mark.parametrize("name", CRD_NAMES)
    def test_every_column_points_at_a_declared_field_of_a_matching_type(self, name: str) -> None:
        column_types = {
            "integer": {"integer"},
            "boolean": {"boolean"},
            "string": {"string", "array"},
            "date": {"string"},
        }
        schema = root_schema(crd(name))
        for column in version(crd(name))["additionalPrinterColumns"]:
            path = schema_path_of(column["jsonPath"])
            if path.startswith("metadata."):
                continue  # ObjectMeta, not part of our schema
            assert declared_type(node_at(schema, path)) in column_types[column["type"]], column
