"""Query templates: Flagger's variables, escaping by context, errors, and exact builtin PromQL."""

from __future__ import annotations

import pytest

from analysis import (
    ProviderNotSupportedError,
    QueryContext,
    TemplateError,
    UnknownProviderError,
    builtin_queries,
    escape_regex,
    render_query,
)

CTX = QueryContext(
    name="podinfo",
    namespace="test",
    target="podinfo",
    provider="kubernetes",
    service="podinfo-svc",
    ingress="podinfo-ing",
    route="podinfo-route",
)


class TestVariables:
    def test_every_flagger_variable_renders(self) -> None:
        tpl = "{{ name }} {{namespace}} {{  target  }} {{ service }} {{ ingress }} {{ route }} {{ interval }}"
        assert render_query(tpl, CTX, interval="30s") == (
            "podinfo test podinfo podinfo-svc podinfo-ing podinfo-route 30s"
        )

    def test_service_ingress_route_default_to_target(self) -> None:
        ctx = QueryContext(name="c", namespace="n", target="app", provider="istio")
        assert render_query("{{ service }}/{{ ingress }}/{{ route }}", ctx) == "app/app/app"

    def test_interval_defaults_to_one_minute(self) -> None:
        assert render_query("rate(x[{{ interval }}])", CTX) == "rate(x[1m])"

    def test_template_variables(self) -> None:
        q = render_query('x{code=~"{{ variables.codes }}"}', CTX, variables={"codes": "5.."})
        assert q == 'x{code=~"5.."}'

    def test_trim_markers_remove_adjacent_whitespace(self) -> None:
        assert render_query("a   {{- target -}}   b", CTX) == "apodinfob"

    def test_unknown_variable_is_named(self) -> None:
        with pytest.raises(TemplateError, match=r"unknown template variable \{\{ deployment \}\}"):
            render_query("x{{ deployment }}", CTX)

    def test_missing_template_variable_is_named(self) -> None:
        with pytest.raises(TemplateError, match=r"variables\.missing.*no key 'missing'"):
            render_query("{{ variables.missing }}", CTX, variables={"other": "1"})

    def test_go_field_syntax_is_rejected_with_the_expression(self) -> None:
        with pytest.raises(TemplateError, match=r"\{\{ \.Name \}\}"):
            render_query("{{ .Name }}", CTX)

    @pytest.mark.parametrize(
        ("template", "fragment"),
        [
            ('sum(x{a="{{ target "})', "has no matching"),
            ('sum(x{a="{{ target {{ name }}"})', "has no matching"),
        ],
    )
    def test_unbalanced_braces(self, template: str, fragment: str) -> None:
        with pytest.raises(TemplateError, match="unbalanced braces") as info:
            render_query(template, CTX)
        assert fragment in str(info.value)

    def test_closing_braces_outside_an_expression_are_text_as_in_go(self) -> None:
        tpl = '[{"Id": "e", "MetricStat": {"Metric": {"Dimensions": [{"Value": "{{ target }}"}]}}}]'
        assert render_query(tpl, CTX) == tpl.replace("{{ target }}", CTX.target)

    def test_bad_interval_is_rejected(self) -> None:
        with pytest.raises(TemplateError, match="interval"):
            render_query("rate(x[{{ interval }}])", CTX, interval="1 minute")

    def test_single_braces_of_promql_are_left_alone(self) -> None:
        tpl = 'sum by (le) (rate(x{a="b"}[1m]))'
        assert render_query(tpl, CTX) == tpl


class TestEscaping:
    def test_quotes_and_backslashes_inside_strings(self) -> None:
        q = render_query('x{a="{{ variables.v }}"}', CTX, variables={"v": 'say "hi" \\ bye'})
        assert q == 'x{a="say \\"hi\\" \\\\ bye"}'

    def test_single_quoted_strings_escape_single_quotes(self) -> None:
        q = render_query("x{a='{{ variables.v }}'}", CTX, variables={"v": "it's"})
        assert q == "x{a='it\\'s'}"

    def test_names_in_regex_matchers_are_regex_escaped(self) -> None:
        ctx = QueryContext(name="c", namespace="n", target="my.app", provider="istio")
        q = render_query('x{w=~"{{ target }}-[a-z]+"}', ctx)
        # regex \. becomes \\. inside a PromQL double-quoted string
        assert q == 'x{w=~"my\\\\.app-[a-z]+"}'

    def test_names_in_plain_matchers_are_not_regex_escaped(self) -> None:
        ctx = QueryContext(name="c", namespace="n", target="my.app", provider="istio")
        assert render_query('x{w="{{ target }}"}', ctx) == 'x{w="my.app"}'

    def test_negative_regex_matcher_with_spaces_counts_as_regex(self) -> None:
        ctx = QueryContext(name="c", namespace="n", target="a+b", provider="istio")
        assert render_query('x{w !~ "{{ target }}"}', ctx) == 'x{w !~ "a\\\\+b"}'

    def test_variables_keep_their_regex_meaning(self) -> None:
        q = render_query('x{c=~"{{ variables.re }}"}', CTX, variables={"re": "5\\d\\d"})
        assert q == 'x{c=~"5\\\\d\\\\d"}'  # the regex 5\d\d survives PromQL string unescaping

    def test_escape_regex_escapes_every_re2_metacharacter(self) -> None:
        assert escape_regex(".+*?()|[]{}^$\\") == "\\.\\+\\*\\?\\(\\)\\|\\[\\]\\{\\}\\^\\$\\\\"

    def test_escaped_characters_in_template_strings_are_preserved(self) -> None:
        tpl = 'x{a=~"5\\\\d+", b="{{ target }}"}'
        assert render_query(tpl, CTX) == 'x{a=~"5\\\\d+", b="podinfo"}'


def _ctx(provider: str) -> QueryContext:
    return QueryContext(name="podinfo", namespace="test", target="podinfo", provider=provider)


class TestBuiltinPromQL:
    """Flagger's queries (reference 4.2), character for character."""

    def test_istio(self) -> None:
        q = builtin_queries(_ctx("istio"))
        assert q.success_rate == (
            'sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="test",'
            'destination_workload=~"podinfo",response_code!~"5.*"}[1m])) / sum(rate(istio_requests_total'
            '{reporter="destination",destination_workload_namespace="test",destination_workload=~"podinfo"}'
            "[1m])) * 100"
        )
        assert q.duration == (
            "histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{reporter="
            '"destination",destination_workload_namespace="test",destination_workload=~"podinfo"}[1m])) by (le))'
        )
        assert q.duration_to_ms == 1.0

    def test_linkerd(self) -> None:
        q = builtin_queries(_ctx("linkerd"))
        assert q.success_rate == (
            'sum(rate(response_total{namespace="test",deployment=~"podinfo",classification!="failure",'
            'direction="inbound"}[1m])) / sum(rate(response_total{namespace="test",deployment=~"podinfo",'
            'direction="inbound"}[1m])) * 100'
        )
        assert q.duration == (
            'histogram_quantile(0.99, sum(rate(response_latency_ms_bucket{namespace="test",'
            'deployment=~"podinfo",direction="inbound"}[1m])) by (le))'
        )

    def test_nginx(self) -> None:
        q = builtin_queries(_ctx("nginx"))
        assert q.success_rate == (
            'sum(rate(nginx_ingress_controller_requests{namespace="test",ingress="podinfo",canary!="",'
            'status!~"5.*"}[1m])) / sum(rate(nginx_ingress_controller_requests{namespace="test",'
            'ingress="podinfo",canary!=""}[1m])) * 100'
        )
        assert q.duration == (
            'sum(rate(nginx_ingress_controller_response_duration_seconds_sum{namespace="test",'
            'ingress="podinfo",canary!=""}[1m])) / sum(rate(nginx_ingress_controller_response_duration_'
            'seconds_count{namespace="test",ingress="podinfo",canary!=""}[1m])) * 1000'
        )

    @pytest.mark.parametrize(
        "provider", ["kubernetes", "gatewayapi", "gatewayapi:v1", "gatewayapi:v1beta1"]
    )
    def test_http_observer(self, provider: str) -> None:
        q = builtin_queries(_ctx(provider))
        sel = (
            'kubernetes_namespace="test",kubernetes_pod_name=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"'
        )
        assert q.success_rate == (
            f'sum(rate(http_request_duration_seconds_count{{{sel},status!~"5.*"}}[1m])) / '
            f"sum(rate(http_request_duration_seconds_count{{{sel}}}[1m])) * 100"
        )
        assert q.duration == (
            f"histogram_quantile(0.99, sum(rate(http_request_duration_seconds_bucket{{{sel}}}[1m])) by (le))"
        )
        assert q.duration_to_ms == 1000.0

    def test_linkerd_is_chosen_when_the_name_contains_linkerd(self) -> None:
        assert builtin_queries(_ctx("smi-linkerd")).observer == "linkerd"

    def test_interval_is_substituted(self) -> None:
        assert "[2m]" in builtin_queries(_ctx("istio"), interval="2m").success_rate

    def test_primary_binds_target_to_its_primary_twin(self) -> None:
        q = builtin_queries(_ctx("kubernetes"), primary=True)
        assert 'kubernetes_pod_name=~"podinfo-primary-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"' in q.requests
        q = builtin_queries(_ctx("istio"), primary=True)
        assert 'destination_workload=~"podinfo-primary"' in q.success_rate

    def test_nginx_primary_is_the_non_canary_ingress_traffic(self) -> None:
        q = builtin_queries(_ctx("nginx"), primary=True)
        assert 'ingress="podinfo",canary=""' in q.requests
        assert 'canary!=""' not in q.requests

    def test_count_and_bucket_queries_for_the_statistical_judge(self) -> None:
        q = builtin_queries(_ctx("istio"), interval="45s")
        sel = 'reporter="destination",destination_workload_namespace="test",destination_workload=~"podinfo"'
        assert q.requests == f"sum(increase(istio_requests_total{{{sel}}}[45s]))"
        assert q.errors == (
            f'sum(increase(istio_requests_total{{{sel},response_code=~"5.*"}}[45s])) or vector(0)'
        )
        assert q.buckets == (
            f"sum by (le) (increase(istio_request_duration_milliseconds_bucket{{{sel}}}[45s]))"
        )

    def test_unsupported_provider_is_not_an_unknown_one(self) -> None:
        with pytest.raises(ProviderNotSupportedError, match="not supported"):
            builtin_queries(_ctx("crossover"))
        with pytest.raises(UnknownProviderError, match="unknown provider 'foo'") as info:
            builtin_queries(_ctx("foo"))
        assert info.value.path == "spec.provider"
