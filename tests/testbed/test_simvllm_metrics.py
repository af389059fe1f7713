"""The simulated pod's /metrics must parse back with vLLM's exact names, labels, buckets."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from tierscale_testbed.simvllm import metrics


def _families(m: metrics.VllmMetrics) -> dict[str, tuple[str, list[Sample]]]:
    text = m.render().decode()
    return {f.name: (f.type, list(f.samples)) for f in text_string_to_metric_families(text)}


def _buckets(samples: list[Sample], name: str) -> dict[str, float]:
    return {s.labels["le"]: s.value for s in samples if s.name == f"{name}_bucket"}


def test_names_keep_their_colon_in_the_classic_text_format() -> None:
    text = metrics.VllmMetrics(model_name="m").render().decode()
    assert "vllm:num_requests_running{" in text
    assert "vllm_num_requests_running" not in text
    assert "_created" not in text


def test_every_current_vllm_metric_has_its_type_and_labels() -> None:
    fams = _families(metrics.VllmMetrics(model_name="llama", engine="0"))
    expected = {
        metrics.RUNNING: "gauge",
        metrics.WAITING: "gauge",
        metrics.KV_USAGE: "gauge",
        metrics.TTFT: "histogram",
        metrics.ITL: "histogram",
        metrics.TPOT: "histogram",
        metrics.E2E: "histogram",
        metrics.QUEUE: "histogram",
        metrics.PREFILL: "histogram",
        metrics.DECODE: "histogram",
        metrics.INFERENCE: "histogram",
        metrics.PROMPT_TOKENS: "counter",
        metrics.GENERATION_TOKENS: "counter",
        metrics.PREEMPTIONS: "counter",
        metrics.REQUEST_SUCCESS: "counter",
        metrics.REQUEST_PROMPT_TOKENS: "histogram",
        metrics.REQUEST_GENERATION_TOKENS: "histogram",
        metrics.CACHE_CONFIG: "gauge",
    }
    for name, kind in expected.items():
        assert fams[name][0] == kind, name
        if name != metrics.CACHE_CONFIG:
            for sample in fams[name][1]:
                assert sample.labels["model_name"] == "llama"
                assert sample.labels["engine"] == "0"
    assert metrics.KV_USAGE_DEPRECATED not in fams
    assert metrics.ITL_DEPRECATED not in fams


def test_deprecated_names_only_behind_the_flag() -> None:
    m = metrics.VllmMetrics(model_name="m", show_deprecated=True)
    m.set_gauges(metrics.EngineGauges(running=1, waiting=0, kv_usage_frac=0.25))
    m.observe_next_token(0.03)
    fams = _families(m)
    assert fams[metrics.KV_USAGE_DEPRECATED][1][0].value == 0.25
    assert _buckets(fams[metrics.ITL_DEPRECATED][1], metrics.ITL_DEPRECATED)["0.05"] == 1.0


def test_histogram_buckets_are_vllms_and_edges_are_inclusive() -> None:
    m = metrics.VllmMetrics(model_name="m")
    m.observe_first_token(0.1)  # exactly on an edge: counted in le="0.1"
    m.observe_first_token(3.0)
    buckets = _buckets(_families(m)[metrics.TTFT][1], metrics.TTFT)
    assert [float(le) for le in buckets][:-1] == list(metrics.TTFT_BUCKETS_S)
    assert buckets["0.08"] == 0.0
    assert buckets["0.1"] == 1.0
    assert buckets["2.5"] == 1.0
    assert buckets["5.0"] == 2.0
    assert buckets["+Inf"] == 2.0


def test_finished_request_updates_counters_and_request_histograms() -> None:
    m = metrics.VllmMetrics(model_name="m")
    m.observe_finished(
        prompt_tokens=100, output_tokens=11, queue_s=0.2, prefill_s=0.1, decode_s=0.5, e2e_s=0.8
    )
    fams = _families(m)
    assert fams[metrics.PROMPT_TOKENS][1][0].value == 100
    success = {s.labels["finished_reason"]: s.value for s in fams[metrics.REQUEST_SUCCESS][1]}
    assert success == {"stop": 0.0, "length": 1.0, "abort": 0.0}
    tpot_sum = [s for s in fams[metrics.TPOT][1] if s.name.endswith("_sum")][0]
    assert tpot_sum.value == 0.05  # 0.5 s over 10 gaps
    e2e = _buckets(fams[metrics.E2E][1], metrics.E2E)
    assert (e2e["0.5"], e2e["0.8"]) == (0.0, 1.0)


def test_token_count_buckets_follow_one_two_five_up_to_max_model_len() -> None:
    assert metrics.one_two_five_buckets(100) == (1, 2, 5, 10, 20, 50, 100)
    assert metrics.one_two_five_buckets(4096)[-1] == 2000
