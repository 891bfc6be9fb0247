"""canary.model.schema: what the API server would say, found offline, with field paths."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canary.model import schema
from canary.model.schema import (
    DocumentError,
    DocumentIssue,
    SchemaIssue,
    crd_dir,
    format_path,
    load_documents,
    parse_documents,
    validate,
    validate_file,
)

from .support import CRD_DIR


def canary(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
        "service": {"port": 9898},
        "analysis": {"interval": "1m", "threshold": 5, "stepWeight": 10},
    }
    body.update(spec)
    return {
        "apiVersion": "canary.gitops.dev/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": "test"},
        "spec": body,
    }


def gitsource(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "canary.gitops.dev/v1beta1",
        "kind": "GitSource",
        "metadata": {"name": "apps"},
        "spec": {"url": "https://git.example.com/apps.git", **spec},
    }


def paths(issues: list[SchemaIssue], severity: str = "error") -> list[str]:
    return [i.path for i in issues if i.severity == severity]


class TestWhatIsChecked:
    def test_a_minimal_canary_is_valid(self) -> None:
        assert validate(canary()) == []

    @pytest.mark.parametrize(
        "doc",
        [
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "x"},
                "spec": {"bogus": 1},
            },
            {"apiVersion": "v1", "kind": "Service", "spec": {"ports": "nope"}},
            {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization", "spec": {}},
        ],
    )
    def test_other_api_groups_are_not_ours_to_judge(self, doc: dict[str, Any]) -> None:
        assert validate(doc) == []

    @pytest.mark.parametrize(("field", "value"), [("apiVersion", None), ("kind", ""), ("kind", 3)])
    def test_missing_identity_is_an_error(self, field: str, value: Any) -> None:
        doc = canary()
        if value is None:
            del doc[field]
        else:
            doc[field] = value
        assert paths(validate(doc)) == [field]

    def test_not_a_mapping(self) -> None:
        issues = validate(["a", "list"])  # type: ignore[arg-type]
        assert [(i.path, i.severity) for i in issues] == [("", "error")]

    def test_wrong_version_of_a_known_kind(self) -> None:
        doc = canary()
        doc["apiVersion"] = "canary.gitops.dev/v1"
        [issue] = validate(doc)
        assert issue.path == "apiVersion" and "canary.gitops.dev/v1beta1" in issue.message

    def test_unknown_kind_suggests_the_closest(self) -> None:
        doc = canary()
        doc["kind"] = "canary"
        [issue] = validate(doc)
        assert issue.path == "kind" and "did you mean 'Canary'" in issue.message

    def test_flagger_object_is_checked_as_if_converted(self) -> None:
        doc = canary()
        doc["apiVersion"] = "flagger.app/v1beta1"
        del doc["spec"]["service"]["port"]
        issues = validate(doc)
        assert paths(issues) == ["apiVersion", "spec.service.port"]
        assert "canary convert" in issues[0].message

    def test_other_flagger_versions_are_not_convertible(self) -> None:
        doc = canary()
        doc["apiVersion"] = "flagger.app/v1alpha3"
        [issue] = validate(doc)
        assert issue.path == "apiVersion" and "cannot be converted" in issue.message

    def test_list_items_get_indexed_paths(self) -> None:
        bad = canary()
        bad["spec"]["analysis"]["interval"] = "later"
        doc = {"apiVersion": "v1", "kind": "List", "items": [canary(), bad]}
        assert paths(validate(doc)) == ["items[1].spec.analysis.interval"]

    def test_all_problems_are_reported_at_once(self) -> None:
        doc = canary(provider="istio-ingress", suspend="yes")
        doc["spec"]["service"]["port"] = "http"
        doc["spec"]["analysis"]["metrics"] = [{"interval": "1m"}]
        assert sorted(paths(validate(doc))) == [
            "spec.analysis.metrics[0].name",
            "spec.provider",
            "spec.service.port",
            "spec.suspend",
        ]

    def test_input_is_not_modified(self) -> None:
        doc = canary(bogus=True)
        before = copy.deepcopy(doc)
        validate(doc)
        assert doc == before


class TestUnknownFields:
    def test_unknown_field_is_a_warning_with_a_suggestion(self) -> None:
        doc = canary()
        doc["spec"]["analysis"]["metrics"] = [
            {"name": "request-success-rate", "thresholdrange": {"min": 99}}
        ]
        [issue] = validate(doc)
        assert issue.severity == "warning"
        assert issue.path == "spec.analysis.metrics[0].thresholdrange"
        assert "dropped by the API server" in issue.message
        assert "did you mean 'thresholdRange'" in issue.message

    @pytest.mark.parametrize(("typo", "meant"), [("alfa", "alpha"), ("retry", "retries")])
    def test_a_short_misspelling_is_still_suggested(self, typo: str, meant: str) -> None:
        # "alfa" is docs/analysis.md's own example of a misspelt compare field; it scores
        # 0.67 against "alpha", under the cutoff of 0.75 that got no suggestion.
        doc = canary()
        doc["spec"]["analysis"]["metrics"] = [
            {"name": "request-success-rate", "compare": {typo: 0.01}}
        ]
        [issue] = validate(doc)
        assert issue.path == f"spec.analysis.metrics[0].compare.{typo}"
        assert f"did you mean {meant!r}" in issue.message

    def test_unknown_top_level_field(self) -> None:
        doc = canary()
        doc["specs"] = {}
        assert paths(validate(doc), "warning") == ["specs"]

    def test_a_dropped_field_does_not_count_for_validation(self) -> None:
        # The API server prunes before it validates: a misspelt required field is missing.
        doc = canary()
        doc["spec"]["service"] = {"Port": 80}
        issues = validate(doc)
        assert paths(issues) == ["spec.service.port"]
        assert paths(issues, "warning") == ["spec.service.Port"]

    @pytest.mark.parametrize(
        "where",
        [
            ("status", "kopf"),
            ("status", "analysis", 0, "details"),
            ("spec", "service", "trafficPolicy", "tunnel"),
            ("spec", "service", "trafficPolicy", "loadBalancer", "simple"),
        ],
    )
    def test_open_ended_parts_keep_anything(self, where: tuple[Any, ...]) -> None:
        doc = canary()
        doc["spec"]["analysis"]["metrics"] = [{"name": "latency", "compare": {}}]
        doc["status"] = {"analysis": [{"name": "latency"}]}
        node: Any = doc
        for part in where[:-1]:
            node = node[part] if isinstance(part, int) else node.setdefault(part, {})
        node[where[-1]] = {"anything": [1, "two", {"three": None}]}
        assert validate(doc) == []

    def test_compare_is_typed_now(self) -> None:
        doc = canary()
        doc["spec"]["analysis"]["metrics"] = [
            {"name": "latency", "compare": {"test": "median", "judge": 1}}
        ]
        issues = validate(doc)
        assert paths(issues) == ["spec.analysis.metrics[0].compare.test"]
        assert paths(issues, "warning") == ["spec.analysis.metrics[0].compare.judge"]

    def test_map_values_are_checked_and_map_keys_are_bracketed(self) -> None:
        doc = canary()
        doc["spec"]["analysis"]["metrics"] = [{"name": "m", "templateVariables": {"route.name": 5}}]
        assert paths(validate(doc)) == ["spec.analysis.metrics[0].templateVariables[route.name]"]

    @settings(max_examples=40, deadline=None)
    @given(
        st.sampled_from(
            [
                ("spec",),
                ("spec", "service"),
                ("spec", "analysis"),
                ("spec", "targetRef"),
                ("spec", "gitops"),
            ]
        ),
        st.from_regex(r"\Azz[A-Za-z]{1,8}\Z"),
    )
    def test_any_unknown_field_is_reported_at_its_path(
        self, parent: tuple[str, ...], name: str
    ) -> None:
        doc = canary(gitops={})
        node: Any = doc
        for part in parent:
            node = node[part]
        node[name] = "value"
        issues = validate(doc)
        assert [(i.severity, i.path) for i in issues] == [("warning", ".".join((*parent, name)))]


class TestKubernetesExtensions:
    @pytest.mark.parametrize("value", [8080, "http", "grpc-web"])
    def test_int_or_string_accepts_both(self, value: Any) -> None:
        assert validate(canary(service={"port": 80, "targetPort": value})) == []

    @pytest.mark.parametrize("value", [8.5, True, [80], {"port": 80}])
    def test_int_or_string_rejects_the_rest(self, value: Any) -> None:
        assert paths(validate(canary(service={"port": 80, "targetPort": value}))) == [
            "spec.service.targetPort"
        ]

    def test_null_of_a_non_nullable_field_is_dropped(self) -> None:
        doc = canary()
        doc["spec"]["analysis"]["metrics"] = None
        doc["spec"]["skipAnalysis"] = None
        assert validate(doc) == []

    def test_nullable_status_value_accepts_null(self) -> None:
        doc = canary()
        doc["status"] = {"analysis": [{"name": "latency", "value": None, "primaryValue": 0.2}]}
        assert validate(doc) == []

    @pytest.mark.parametrize(
        "compare",
        [{"alpha": 0.01}, {"alpha": 0.4999}, {"quantile": 0.5}, {"quantile": 0.999}],
    )
    def test_values_inside_exclusive_bounds_are_valid(self, compare: dict[str, Any]) -> None:
        # The CRD's OpenAPI v3.0 `exclusiveMinimum: true` is no bound of 1 (JSON Schema's reading).
        doc = canary()
        doc["spec"]["analysis"]["metrics"] = [{"name": "request-success-rate", "compare": compare}]
        assert validate(doc) == []

    @pytest.mark.parametrize(
        ("compare", "message"),
        [
            ({"alpha": 0}, "expected a value greater than 0; got integer 0"),
            ({"alpha": 0.5}, "expected a value less than 0.5; got number 0.5"),
            ({"quantile": 1}, "expected a value less than 1; got integer 1"),
            ({"detectIncrease": 1}, "expected a value greater than 1; got integer 1"),
            ({"quantile": 0.4}, "expected a value of at least 0.5; got number 0.4"),
        ],
    )
    def test_an_exclusive_bound_refuses_the_bound_itself(
        self, compare: dict[str, Any], message: str
    ) -> None:
        doc = canary()
        doc["spec"]["analysis"]["metrics"] = [{"name": "request-success-rate", "compare": compare}]
        [field] = compare
        assert [(i.path, i.message) for i in validate(doc)] == [
            (f"spec.analysis.metrics[0].compare.{field}", message)
        ]

    def test_integral_float_counts_as_integer_like_yaml_to_json(self) -> None:
        assert validate(canary(progressDeadlineSeconds=600.0)) == []
        assert paths(validate(canary(progressDeadlineSeconds=600.5))) == [
            "spec.progressDeadlineSeconds"
        ]


class TestFlaggerRules:
    @pytest.mark.parametrize(
        "strategy",
        [{"iterations": 10}, {"stepWeight": 10}, {"stepWeights": [1, 10, 50]}],
    )
    def test_each_strategy_alone_is_valid(self, strategy: dict[str, Any]) -> None:
        assert validate(canary(analysis={"interval": "1m", "threshold": 2, **strategy})) == []

    def test_two_strategies_name_both(self) -> None:
        [issue] = validate(
            canary(analysis={"interval": "1m", "threshold": 2, "iterations": 5, "stepWeights": [5]})
        )
        assert issue.path == "spec.analysis"
        assert "iterations and stepWeights" in issue.message

    def test_missing_interval_points_at_interval(self) -> None:
        assert paths(validate(canary(analysis={"threshold": 2, "stepWeight": 5}))) == [
            "spec.analysis.interval"
        ]

    def test_no_analysis_is_left_to_semantic_validation(self) -> None:
        doc = canary()
        del doc["spec"]["analysis"]
        assert validate(doc) == []

    @pytest.mark.parametrize("interval", ["10s", "1m", "90s", "1m30s", "500ms", "2h"])
    def test_intervals_flagger_and_we_accept(self, interval: str) -> None:
        doc = canary()
        doc["spec"]["analysis"]["interval"] = interval
        doc["spec"]["analysis"]["metrics"] = [{"name": "m", "interval": interval}]
        doc["spec"]["analysis"]["webhooks"] = [
            {"name": "w", "url": "http://x/", "timeout": interval}
        ]
        assert validate(doc) == []

    @given(st.from_regex(r"\A[0-9]{1,4}(m|s)[0-9a-z]{0,4}\Z"))
    def test_everything_flaggers_interval_pattern_accepts_is_accepted(self, interval: str) -> None:
        doc = canary()
        doc["spec"]["analysis"]["interval"] = interval
        assert validate(doc) == []

    @pytest.mark.parametrize("interval", ["1 minute", "m1", "", "1d", "-1m"])
    def test_intervals_rejected_with_a_hint(self, interval: str) -> None:
        doc = canary()
        doc["spec"]["analysis"]["interval"] = interval
        [issue] = validate(doc)
        assert issue.path == "spec.analysis.interval" and "duration such as" in issue.message

    def test_enum_error_suggests_the_right_spelling(self) -> None:
        [issue] = validate(canary(provider="Istio"))
        assert issue.path == "spec.provider" and "did you mean 'istio'" in issue.message

    def test_empty_severity_and_type_are_flaggers_defaults(self) -> None:
        doc = canary()
        doc["spec"]["analysis"]["alerts"] = [
            {"name": "a", "severity": "", "providerRef": {"name": "slack"}}
        ]
        doc["spec"]["analysis"]["webhooks"] = [{"name": "w", "type": "", "url": "http://x/"}]
        assert validate(doc) == []


class TestGitSource:
    @pytest.mark.parametrize(
        "url",
        [
            "https://github.com/example/apps.git",
            "http://git.local/apps",
            "ssh://git@github.com/example/apps.git",
            "git@github.com:example/apps.git",
            "deploy@git.internal:platform/apps",
            "git://git.local/apps.git",
            "file:///srv/git/apps.git",
        ],
    )
    def test_accepted_urls(self, url: str) -> None:
        assert validate(gitsource(url=url)) == []

    @pytest.mark.parametrize(
        "url", ["github.com/example/apps", "/srv/git/apps", "ftp://x/apps", "https://"]
    )
    def test_rejected_urls(self, url: str) -> None:
        [issue] = validate(gitsource(url=url))
        assert issue.path == "spec.url" and "Git URL" in issue.message

    @pytest.mark.parametrize(
        ("value", "ok"),
        [("1m", True), ("1m30s", True), ("1.5h", True), ("5 m", False), ("1m ", False)],
    )
    def test_durations_are_whole_go_durations(self, value: str, ok: bool) -> None:
        issues = validate(gitsource(interval=value, timeout=value))
        assert paths(issues) == ([] if ok else ["spec.interval", "spec.timeout"])


class TestMetadata:
    @pytest.mark.parametrize("name", ["Podinfo", "pod_info", "-podinfo", "a" * 254])
    def test_name_must_be_a_dns_subdomain(self, name: str) -> None:
        doc = canary()
        doc["metadata"]["name"] = name
        assert paths(validate(doc)) == ["metadata.name"]

    def test_generate_name_replaces_name(self) -> None:
        doc = canary()
        doc["metadata"] = {"generateName": "podinfo-"}
        assert validate(doc) == []

    def test_namespace_must_be_a_dns_label(self) -> None:
        doc = canary()
        doc["metadata"]["namespace"] = "team.a"
        assert paths(validate(doc)) == ["metadata.namespace"]

    def test_annotation_values_must_be_strings(self) -> None:
        doc = canary()
        doc["metadata"]["annotations"] = {"example.com/replicas": 3, "ok": "yes"}
        assert paths(validate(doc)) == ["metadata.annotations[example.com/replicas]"]


class TestDocuments:
    def test_numbers_count_empty_documents(self) -> None:
        text = "# header\n---\n---\na: 1\n---\n# nothing\n---\nb: 2\n"
        assert parse_documents(text) == [(2, {"a": 1}), (4, {"b": 2})]

    def test_timestamps_stay_strings(self) -> None:
        [(_, doc)] = parse_documents("t: 2025-01-01T00:00:00Z\nd: 2025-01-01\n")
        assert doc == {"t": "2025-01-01T00:00:00Z", "d": "2025-01-01"}

    def test_duplicate_key_names_file_document_and_line(self) -> None:
        with pytest.raises(DocumentError) as caught:
            parse_documents("a: 1\n---\nspec:\n  x: 1\n  x: 2\n", "f.yaml")
        assert (caught.value.file, caught.value.document) == ("f.yaml", 2)
        assert "line 5" in caught.value.reason and "'x' appears twice" in caught.value.reason

    def test_syntax_error_names_the_document(self) -> None:
        with pytest.raises(DocumentError) as caught:
            parse_documents("a: 1\n---\nb: [1, 2\n", "f.yaml")
        assert caught.value.document == 2
        assert str(caught.value).startswith("f.yaml: document 2: ")

    @pytest.mark.parametrize("text", ["- a\n- b\n", "just text\n", "42\n"])
    def test_a_document_must_be_a_mapping(self, text: str) -> None:
        with pytest.raises(DocumentError, match="expected a mapping"):
            parse_documents("a: 1\n---\n" + text, "f.yaml")

    def test_unreadable_file(self, tmp_path: Path) -> None:
        with pytest.raises(DocumentError, match="cannot read"):
            load_documents(tmp_path / "missing.yaml")

    def test_validate_file_locates_issues(self, tmp_path: Path) -> None:
        path = tmp_path / "c.yaml"
        path.write_text(
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: test}\n---\n"
            "apiVersion: canary.gitops.dev/v1beta1\nkind: GitSource\nmetadata: {name: a}\nspec: {}\n"
        )
        [found] = validate_file(path)
        assert (found.file, found.document, found.issue.path) == (str(path), 2, "spec.url")
        assert str(found) == f"{path}: document 2: error: spec.url: required field 'url' is missing"


class TestApi:
    def test_results_are_frozen(self) -> None:
        issue = SchemaIssue("spec", "m")
        with pytest.raises(dataclasses.FrozenInstanceError):
            issue.path = "x"  # type: ignore[misc]
        with pytest.raises(dataclasses.FrozenInstanceError):
            DocumentIssue("f", 1, issue).document = 2  # type: ignore[misc]

    @pytest.mark.parametrize(
        ("parts", "expected"),
        [
            (("spec", "analysis", "metrics", 0, "name"), "spec.analysis.metrics[0].name"),
            (("items", 2, "metadata"), "items[2].metadata"),
            (("metadata", "annotations", "example.com/x"), "metadata.annotations[example.com/x]"),
            ((), ""),
        ],
    )
    def test_format_path(self, parts: tuple[Any, ...], expected: str) -> None:
        assert format_path(parts) == expected

    def test_crds_are_found_in_the_checkout(self) -> None:
        assert crd_dir() == CRD_DIR

    def test_packaged_crds_win_over_the_checkout(self, tmp_path: Path) -> None:
        packaged, checkout = tmp_path / "_data" / "crds", tmp_path / "crds"
        for directory in (packaged, checkout):
            directory.mkdir(parents=True)
            (directory / "canary.yaml").write_text("")
        assert schema._find_crd_dir([packaged, checkout]) == packaged
        assert schema._find_crd_dir([tmp_path / "nowhere", checkout]) == checkout
        with pytest.raises(FileNotFoundError, match="nowhere"):
            schema._find_crd_dir([tmp_path / "nowhere"])


class TestStatusMatchesTheModel:
    """What the controller writes to status must survive the API server unchanged."""

    def test_empty_and_full_status_are_valid_without_pruning(self) -> None:
        from canary.model.status import (
            CanaryStatus,
            Condition,
            GitRevertStatus,
            MetricStatus,
            Phase,
            RevertState,
        )

        full = CanaryStatus(
            phase=Phase.PROGRESSING,
            canary_weight=20,
            failed_checks=1,
            tracked_configs={"configmap/podinfo": "0123456789abcdef"},
            conditions=(Condition("Promoted", "Unknown", "Progressing", "running"),),
            current_revision="main@sha1:2222222",
            last_good_revision="main@sha1:1111111",
            git_revert=GitRevertStatus(RevertState.PENDING, "main@sha1:1", "main@sha1:2"),
            analysis=(MetricStatus("latency", "Pass", "ok", value=0.2, details={"p": 0.4}),),
            handled_commands={"promote": "token"},
        )
        for status in (CanaryStatus(), full):
            doc = canary()
            doc["status"] = status.to_dict()
            assert validate(doc) == []
            kept = schema._prune(
                doc,
                schema.load_resource_schemas()[("canary.gitops.dev/v1beta1", "Canary")].schema,
                (),
                [],
                root=True,
            )
            written = {k: v for k, v in status.to_dict().items() if v is not None}
            assert kept["status"] == written
