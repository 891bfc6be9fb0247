"""Every metric provider type, in one table: where it lives, what it needs, what it answers.

One row per ``spec.provider.type``. The spec parser checks a MetricTemplate against its row
(required Secret keys, whether an address is needed and its default), :func:`make_provider`
loads the row's module, ``canary lint`` and docs/analysis.md read the same facts. A row holds
no code and imports nothing, so the pure part of the package (and ``canary.model``) can read
it; the module it names is loaded only when a metric of that type runs.

Names, fields, Secret keys and defaults follow Flagger's, so a Flagger MetricTemplate works
unchanged; ``web`` is Argo Rollouts' generic provider, which Flagger does not have.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["VENDORS", "Vendor", "compare_problem", "vendor"]


@dataclass(frozen=True, slots=True)
class Vendor:
    """One metric provider type.

    ``secret_keys`` must all be in the Secret (``spec.provider.secretRef``) when the type
    needs one; ``secret_required`` says whether it does. ``any_secret_keys`` are
    alternatives of which at least one set must be present (e.g. ``token`` or
    ``username`` + ``password``); ``optional_secret_keys`` are read when present.
    ``default_address`` is used when neither ``spec.provider.address`` nor the Secret's
    ``address`` key gives one; ``None`` with ``address_required`` means the user must say.
    ``point`` (which value of the answer is the metric's value), ``window`` and
    ``compare`` are the words of docs/analysis.md's provider table.
    """

    type: str
    title: str
    module: str
    cls: str
    default_address: str | None = None
    address_required: bool = True
    secret_required: bool = False
    secret_keys: tuple[str, ...] = ()
    optional_secret_keys: tuple[str, ...] = ()
    kube: bool = False  # reads through the Kubernetes API, not a vendor address
    point: str = ""
    window: str = ""
    compare: str = "thresholds only"
    # The compare tests it can feed (CompareTest values): counts over exactly the judged
    # window need {{ interval }} in the query; latency needs Prometheus histogram buckets.
    compare_tests: tuple[str, ...] = ()


VENDORS: tuple[Vendor, ...] = (
    Vendor(
        "prometheus",
        "Prometheus",
        "analysis._prometheus",
        "PrometheusProvider",
        default_address="http://prometheus:9090",
        address_required=False,
        optional_secret_keys=("token", "username", "password", "address", "ca.crt"),
        point="the single sample of an instant vector or a scalar",
        window="in the query: [{{ interval }}]",
        compare="error rate and latency (buckets), builtin or templated",
        compare_tests=("errorRate", "latency"),
    ),
    Vendor(
        "datadog",
        "Datadog",
        "analysis._datadog",
        "DatadogProvider",
        default_address="https://api.datadoghq.com",
        address_required=False,
        secret_required=True,
        secret_keys=("datadog_api_key", "datadog_application_key"),
        optional_secret_keys=("address",),
        point="the first (oldest) point of the first series",
        window="10 x interval, ending now",
    ),
    Vendor(
        "cloudwatch",
        "Amazon CloudWatch",
        "analysis._cloudwatch",
        "CloudWatchProvider",
        address_required=False,
        optional_secret_keys=("aws_access_key_id", "aws_secret_access_key", "aws_session_token"),
        point="the first value of the first MetricDataResult (its newest point)",
        window="10 x interval, ending now",
    ),
    Vendor(
        "newrelic",
        "New Relic",
        "analysis._newrelic",
        "NewRelicProvider",
        default_address="https://insights-api.newrelic.com",
        address_required=False,
        secret_required=True,
        secret_keys=("newrelic_query_key", "newrelic_account_id"),
        optional_secret_keys=("address",),
        point="the first value of the first result",
        window="SINCE interval seconds ago, appended to the NRQL",
    ),
    Vendor(
        "graphite",
        "Graphite",
        "analysis._graphite",
        "GraphiteProvider",
        optional_secret_keys=("username", "password", "address"),
        point="the last non-null datapoint of the only series",
        window="in the query: from=-{{ interval }} (rendered in seconds)",
        compare="error rate, with counts summed over {{ interval }} in the query",
        compare_tests=("errorRate",),
    ),
    Vendor(
        "stackdriver",
        "Google Cloud Monitoring",
        "analysis._stackdriver",
        "StackdriverProvider",
        default_address="https://monitoring.googleapis.com",
        address_required=False,
        secret_required=True,
        secret_keys=("project",),
        optional_secret_keys=("serviceAccountKey", "address"),
        point="the first value of the first (newest) point of the first time series",
        window="in the MQL query (align/every/within)",
    ),
    Vendor(
        "influxdb",
        "InfluxDB",
        "analysis._influxdb",
        "InfluxDBProvider",
        secret_required=True,
        secret_keys=("token", "org"),
        optional_secret_keys=("address",),
        point="the _value of the first record of the only table",
        window="in the Flux query: range(start: -{{ interval }})",
        compare="error rate, with counts summed over {{ interval }} in the query",
        compare_tests=("errorRate",),
    ),
    Vendor(
        "dynatrace",
        "Dynatrace",
        "analysis._dynatrace",
        "DynatraceProvider",
        secret_required=True,
        secret_keys=("dynatrace_token",),
        optional_secret_keys=("address",),
        point="the last non-null value of the only series (resolution=Inf)",
        window="10 x interval, ending now",
    ),
    Vendor(
        "keptn",
        "Keptn",
        "analysis._keptn",
        "KeptnProvider",
        address_required=False,
        kube=True,
        point="status.value of the KeptnMetric (analysis/... queries: not yet)",
        window="the KeptnMetric's own fetch interval",
    ),
    Vendor(
        "splunk",
        "Splunk Observability (SignalFx)",
        "analysis._splunk",
        "SplunkProvider",
        secret_required=True,
        secret_keys=("sf_token_key",),
        optional_secret_keys=("address",),
        point="the last non-null data point of the only time series",
        window="10 x interval, ending now",
    ),
    Vendor(
        "externalmetrics",
        "Kubernetes External Metrics API",
        "analysis._externalmetrics",
        "ExternalMetricsProvider",
        address_required=False,
        kube=True,
        optional_secret_keys=("token",),
        point="the value of the first item",
        window="the metric adapter's own",
    ),
    Vendor(
        "web",
        "Web (any HTTP JSON endpoint)",
        "analysis._web",
        "WebProvider",
        address_required=False,
        optional_secret_keys=(),
        point="the number at spec.provider.web.jsonPath in the answer",
        window="in the URL or body: {{ interval }}",
        compare="error rate, if the endpoint counts over {{ interval }}",
        compare_tests=("errorRate",),
    ),
)

_BY_TYPE = {v.type: v for v in VENDORS}


def compare_problem(type_: str, test: str) -> str | None:
    """Why a ``compare`` test cannot run on a provider of ``type_``, or None when it can.

    The compare judge counts requests and errors over exactly the window since its last
    look, which it passes to the query as ``{{ interval }}``; a vendor whose API fixes its
    own window (ten intervals, the last point) would count over the wrong span, and only
    Prometheus has the histogram buckets the latency test reads.
    """
    row = vendor(type_)
    if row is None or test in row.compare_tests:
        return None
    if test == "latency":
        return (
            f"compare latency reads Prometheus histogram buckets; a {type_} provider has "
            "none: judge this metric with thresholdRange"
        )
    return (
        f"compare {test} counts over the judged window ({{{{ interval }}}}), and a {type_} "
        f"provider answers over its own window ({row.window}): judge this metric with "
        "thresholdRange"
    )


def vendor(type_: str) -> Vendor | None:
    """The row of ``type_``, or None for a type nobody knows."""
    return _BY_TYPE.get(type_)
