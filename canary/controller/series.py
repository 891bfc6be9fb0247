"""Metric families with a label set per Canary, kept as plain numbers.

prometheus_client's `Gauge` and `Histogram` keep, for every label set, a child object with
its own attribute dict, and one value object and one lock per bucket. At one label set per
Canary that was the controller's second-largest use of memory after its watch caches:
12 KiB per Canary across the per-Canary families (two duration histograms, ours and
Flagger's, and about eight gauges), 130 MiB at 11,000 Canaries. These families keep a float
per gauge series and a list of counts per histogram series (about 0.1 and 0.6 KiB) and build
the samples when scraped, as prometheus_client's own custom collectors do.

They also write their own exposition text (`render`): a scrape of 11,000 Canaries is about
450,000 lines, and prometheus_client's `generate_latest`, which builds a sample object with a
label dict for each line and formats it, took 3.7 s of CPU for them (over 10 s, Prometheus's
default scrape timeout, beside a busy controller); the label part of a series is formatted
once per series here, and the bucket bounds once per family.

The call sites keep prometheus_client's shape: ``family.labels(name, namespace).set(v)``,
``.observe(v)``, ``family.remove(*labels)``; and ``remove_where(name=..., namespace=...)``
drops a deleted Canary's series, which prometheus_client cannot do by a partial label set. The scrape may run in another thread than the
passes, so each family guards its series with one lock.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Callable, Iterator, Sequence

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

_go_float: Callable[[float], str] = floatToGoString  # untyped in prometheus_client


def _text(pairs: list[tuple[str, str]]) -> str:
    return ",".join(f'{name}="{_escape(value)}"' for name, value in pairs)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


__all__ = ["GaugeFamily", "HistogramFamily"]


class _Family(Collector):
    def __init__(
        self, name: str, documentation: str, labelnames: Sequence[str], registry: CollectorRegistry
    ) -> None:
        self.name, self.documentation = name, documentation
        self.labelnames = tuple(labelnames)
        self._lock = threading.Lock()
        registry.register(self)

    def _key(self, values: Sequence[object]) -> tuple[str, ...]:
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name}: expected labels {self.labelnames}, got {values!r}")
        return tuple(str(v) for v in values)

    def remove_where(self, **labels: str) -> None:
        """Drop every series whose labels include these (a deleted Canary's, whatever its
        other labels: each of its metrics, both bounds)."""
        positions = [(self.labelnames.index(k), v) for k, v in labels.items()]
        with self._lock:
            series = self._series()
            for key in [k for k in series if all(k[i] == v for i, v in positions)]:
                del series[key]

    def _series(self) -> dict[tuple[str, ...], object]:
        raise NotImplementedError

    def _header(self, kind: str) -> str:
        doc = self.documentation.replace("\\", "\\\\").replace("\n", "\\n")
        return f"# HELP {self.name} {doc}\n# TYPE {self.name} {kind}\n"

    def _pairs(self, key: tuple[str, ...]) -> list[tuple[str, str]]:
        """The series' labels in name order, as `generate_latest` writes them."""
        return sorted(zip(self.labelnames, key, strict=True))

    def render(self) -> str:
        """This family in Prometheus's text format (0.0.4), as `generate_latest` writes it."""
        raise NotImplementedError

    def describe(self) -> Iterator[Metric]:
        yield self._family()

    def _family(self) -> Metric:
        raise NotImplementedError


class _GaugeSeries:
    __slots__ = ("_family", "_key")

    def __init__(self, family: GaugeFamily, key: tuple[str, ...]) -> None:
        self._family, self._key = family, key

    def set(self, value: float) -> None:
        with self._family._lock:
            self._family._values[self._key] = float(value)


class GaugeFamily(_Family):
    """A gauge with labels: ``labels(*values).set(v)``, ``remove(*values)``."""

    def __init__(
        self, name: str, documentation: str, labelnames: Sequence[str], registry: CollectorRegistry
    ) -> None:
        self._values: dict[tuple[str, ...], float] = {}
        super().__init__(name, documentation, labelnames, registry)

    def labels(self, *values: object) -> _GaugeSeries:
        return _GaugeSeries(self, self._key(values))

    def remove(self, *values: object) -> None:
        with self._lock:
            self._values.pop(self._key(values), None)

    def _series(self) -> dict[tuple[str, ...], object]:
        return self._values  # type: ignore[return-value]

    def render(self) -> str:
        with self._lock:
            values = list(self._values.items())
        lines = [self._header("gauge")]
        lines += [f"{self.name}{{{_text(self._pairs(k))}}} {_go_float(v)}\n" for k, v in values]
        return "".join(lines)

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            values = list(self._values.items())
        family = self._family()
        for key, value in values:
            family.add_metric(key, value)
        yield family


class _HistogramSeries:
    __slots__ = ("_family", "_key")

    def __init__(self, family: HistogramFamily, key: tuple[str, ...]) -> None:
        self._family, self._key = family, key

    def observe(self, value: float) -> None:
        family = self._family
        with family._lock:
            counts = family._counts.get(self._key)
            if counts is None:
                # One count per bucket (not cumulative), then the sum.
                counts = family._counts[self._key] = [0.0] * (len(family.bounds) + 1)
            counts[bisect.bisect_left(family.bounds, value)] += 1
            counts[-1] += value


class HistogramFamily(_Family):
    """A histogram with labels: ``labels(*values).observe(v)``, ``remove(*values)``; the
    buckets are prometheus_client's defaults (Go's) unless given."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        registry: CollectorRegistry,
        buckets: Sequence[float] = Histogram.DEFAULT_BUCKETS,
    ) -> None:
        bounds = sorted(float(b) for b in buckets)
        if not bounds or bounds[-1] != math.inf:
            bounds.append(math.inf)
        self.bounds: tuple[float, ...] = tuple(bounds)
        self._counts: dict[tuple[str, ...], list[float]] = {}
        super().__init__(name, documentation, labelnames, registry)

    def labels(self, *values: object) -> _HistogramSeries:
        return _HistogramSeries(self, self._key(values))

    def remove(self, *values: object) -> None:
        with self._lock:
            self._counts.pop(self._key(values), None)

    def _series(self) -> dict[tuple[str, ...], object]:
        return self._counts  # type: ignore[return-value]

    def render(self) -> str:
        with self._lock:
            series = [(key, list(counts)) for key, counts in self._counts.items()]
        bounds = [_go_float(b) for b in self.bounds]
        lines = [self._header("histogram")]
        for key, counts in series:
            pairs = self._pairs(key)
            labels = _text(pairs)
            at = bisect.bisect_left([name for name, _ in pairs], "le")  # "le" in name order
            head, tail = _text(pairs[:at]), _text(pairs[at:])
            head, tail = head + "," if head else "", "," + tail if tail else ""
            total = 0.0
            for bound, count in zip(bounds, counts, strict=False):
                total += count
                lines.append(f'{self.name}_bucket{{{head}le="{bound}"{tail}}} {_go_float(total)}\n')
            lines.append(f"{self.name}_count{{{labels}}} {_go_float(total)}\n")
            lines.append(f"{self.name}_sum{{{labels}}} {_go_float(counts[-1])}\n")
        return "".join(lines)

    def _family(self) -> HistogramMetricFamily:
        return HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            series = [(key, list(counts)) for key, counts in self._counts.items()]
        family = self._family()
        for key, counts in series:
            total, buckets = 0.0, []
            for bound, count in zip(self.bounds, counts, strict=False):
                total += count
                buckets.append((_go_float(bound), total))
            family.add_metric(key, buckets, sum_value=counts[-1])
        yield family
