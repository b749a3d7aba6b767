"""The per-call series of :class:`grestws.prometheus.PrometheusMetrics`: how many calls,
by result, and how long they took, for each method at each path in each direction.

Two ways to keep them, with the same names and labels:

- :class:`CollectedCalls` counts in plain Python numbers on the event loop and hands them
  to prometheus-client at scrape time, as a collector: a few hundred nanoseconds a call.
- :class:`NativeCalls` counts with prometheus-client's own Counter and Histogram, which
  its multiprocess mode (``grestws serve --workers``) needs: about a microsecond more.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

__all__ = ("CallSeries", "CollectedCalls", "NativeCalls")

_LABELS = ("path", "method", "kind")
_COUNT_DOC = {
    True: "Calls the clients made, by result (those refused before a handler ran included).",
    False: "Calls the server made on its clients, by result.",
}
_DURATION_DOC = {
    True: "How long the server took to serve a call, interceptors included.",
    False: "How long the server's calls on its clients took (to the answer for a request).",
}


class CallSeries(Protocol):
    """The series of one method at one path in one direction."""

    def done_ok(self, elapsed: float) -> None:
        """A call that succeeded in ``elapsed`` seconds."""

    def done(self, result: str, elapsed: float) -> None:
        """A call that ended with ``result`` in ``elapsed`` seconds."""

    def refused(self, result: str) -> None:
        """A call refused before it ran: counted, not timed."""


class _Names:
    def __init__(self, namespace: str) -> None:
        self.count = {True: f"{namespace}_requests", False: f"{namespace}_out_requests"}
        self.duration = {
            True: f"{namespace}_request_duration_seconds",
            False: f"{namespace}_out_request_duration_seconds",
        }


# -- counted here, collected at scrape time ---------------------------------------------------


class _Stats:
    """One series' numbers: counts by result, observations per bucket (not cumulative; the
    last is +Inf), their sum. Changed on the event loop only."""

    __slots__ = ("bounds", "buckets", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts: dict[str, int] = {}
        self.buckets = [0] * (len(bounds) + 1)
        self.total = 0.0

    def done_ok(self, elapsed: float) -> None:
        counts = self.counts
        counts["OK"] = counts.get("OK", 0) + 1
        self.buckets[bisect_left(self.bounds, elapsed)] += 1
        self.total += elapsed

    def done(self, result: str, elapsed: float) -> None:
        counts = self.counts
        counts[result] = counts.get(result, 0) + 1
        self.buckets[bisect_left(self.bounds, elapsed)] += 1
        self.total += elapsed

    def refused(self, result: str) -> None:
        counts = self.counts
        counts[result] = counts.get(result, 0) + 1


class CollectedCalls:
    """The call series as a prometheus-client collector (registered in ``registry``).

    Concurrency: calls are counted on the event loop; a scrape from any thread copies each
    series' numbers (each copy is one step the GIL does not split) and may see a call's
    count a moment before its duration.
    """

    def __init__(
        self, namespace: str, registry: CollectorRegistry | None, buckets: tuple[float, ...]
    ) -> None:
        self._names = _Names(namespace)
        self._bounds = tuple(buckets)
        self._stats: dict[tuple[str, str, str, bool], _Stats] = {}
        if registry is not None:
            registry.register(self)

    def series(self, path: str, method: str, kind: str, incoming: bool) -> CallSeries:
        key = (path, method, kind, incoming)
        found = self._stats.get(key)
        if found is None:
            found = self._stats[key] = _Stats(self._bounds)
        return found

    def describe(self) -> Iterator[Metric]:
        """The families it yields, for the registry's duplicate check."""
        for incoming in (True, False):
            yield CounterMetricFamily(
                self._names.count[incoming], _COUNT_DOC[incoming], labels=[*_LABELS, "result"]
            )
            yield HistogramMetricFamily(
                self._names.duration[incoming], _DURATION_DOC[incoming], labels=_LABELS
            )

    def collect(self) -> Iterator[Metric]:
        """The series as they are now (called by a scrape, in any thread)."""
        families: dict[bool, tuple[CounterMetricFamily, HistogramMetricFamily]] = {
            incoming: (
                CounterMetricFamily(
                    self._names.count[incoming], _COUNT_DOC[incoming], labels=[*_LABELS, "result"]
                ),
                HistogramMetricFamily(
                    self._names.duration[incoming], _DURATION_DOC[incoming], labels=_LABELS
                ),
            )
            for incoming in (True, False)
        }
        bounds = [repr(float(bound)) for bound in self._bounds] + ["+Inf"]
        for (path, method, kind, incoming), stats in list(self._stats.items()):
            counts, buckets, total = dict(stats.counts), list(stats.buckets), stats.total
            counter, histogram = families[incoming]
            for result, count in counts.items():
                counter.add_metric([path, method, kind, result], count)
            if any(buckets):
                cumulative: list[tuple[str, float]] = []
                running = 0
                for bound, count in zip(bounds, buckets, strict=True):
                    running += count
                    cumulative.append((bound, float(running)))
                histogram.add_metric([path, method, kind], cumulative, total)
        for counter, histogram in families.values():
            yield counter
            yield histogram


# -- counted by prometheus-client's own metrics ---------------------------------------------


class _NativeSeries:
    __slots__ = ("by_result", "counter", "duration", "labels", "ok")

    def __init__(self, counter: Counter, duration: Histogram, labels: tuple[str, ...]) -> None:
        self.counter = counter
        self.labels = labels
        self.ok = counter.labels(*labels, "OK")
        self.by_result: dict[str, Any] = {}
        self.duration = duration.labels(*labels)

    def _count(self, result: str) -> None:
        child = self.by_result.get(result)
        if child is None:
            child = self.by_result[result] = self.counter.labels(*self.labels, result)
        child.inc()

    def done_ok(self, elapsed: float) -> None:
        self.ok.inc()
        self.duration.observe(elapsed)

    def done(self, result: str, elapsed: float) -> None:
        self._count(result)
        self.duration.observe(elapsed)

    def refused(self, result: str) -> None:
        self._count(result)


class NativeCalls:
    """The call series as prometheus-client Counters and Histograms in ``registry``."""

    def __init__(
        self, namespace: str, registry: CollectorRegistry | None, buckets: tuple[float, ...]
    ) -> None:
        def counter(incoming: bool) -> Counter:
            name = "requests" if incoming else "out_requests"
            return Counter(
                name, _COUNT_DOC[incoming], [*_LABELS, "result"], namespace=namespace, registry=registry
            )

        def histogram(incoming: bool) -> Histogram:
            name = "request_duration_seconds" if incoming else "out_request_duration_seconds"
            return Histogram(
                name,
                _DURATION_DOC[incoming],
                _LABELS,
                namespace=namespace,
                registry=registry,
                buckets=buckets,
            )

        self._metrics = {incoming: (counter(incoming), histogram(incoming)) for incoming in (True, False)}
        self._series: dict[tuple[str, str, str, bool], _NativeSeries] = {}

    def series(self, path: str, method: str, kind: str, incoming: bool) -> CallSeries:
        key = (path, method, kind, incoming)
        found = self._series.get(key)
        if found is None:
            counter, duration = self._metrics[incoming]
            found = self._series[key] = _NativeSeries(counter, duration, (path, method, kind))
        return found
