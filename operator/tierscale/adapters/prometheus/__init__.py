"""Prometheus adapter: Envoy's per-route counters and vLLM's pod metrics -> `MetricInputs`.

Modules: `queries` (every input's PromQL, written once), `parse` (API JSON -> numbers and
histograms), `assemble` (answers -> `MetricInputs`, the missing/stale rules), `client`
(`PrometheusMetrics`, the `MetricsPort`), `rules` (recording rules from the same
definitions), `fake` (`FakeMetrics` with fault injection). docs/prometheus.md has the table.
"""
