"""`tierscale fit` and `tierscale predict` on the bundled examples and on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tierscale.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "predictor"
INVALID = EXAMPLES / "invalid"


def expected_errors() -> list[tuple[str, str]]:
    lines = (INVALID / "expected-errors.txt").read_text().splitlines()
    pairs = [line.split(": ", 1) for line in lines if line and not line.startswith("#")]
    return [(name, message) for name, message in pairs]


@pytest.mark.parametrize("source", ["steps-llama-3.1-8b-h100.csv", "saber-qwen2.5-coder-3b.csv"])
def test_fit_writes_a_model_and_prints_its_quality(
    source: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "model.json"
    assert main(["fit", "--profile", str(EXAMPLES / source), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "R^2" in printed and "MAPE" in printed
    assert json.loads(out.read_text())["kind"] == "tierscale.latency-model"


def test_predict_prints_json_for_a_fitted_model(capsys: pytest.CaptureFixture[str]) -> None:
    model = EXAMPLES / "model-llama-3.1-8b-h100.json"
    args = ["predict", "--model", str(model), "--concurrency", "16", "--json"]
    assert main([*args, "--prompt-tokens", "512", "--output-tokens", "128"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["stable"] and 0.005 < result["tpot_s"] < 0.02 and result["ttft_s"] > 0


@pytest.mark.parametrize(("name", "message"), expected_errors())
def test_bad_input_exits_2_with_the_documented_message_and_writes_nothing(
    name: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "model.json"
    path = INVALID / name
    if name.endswith(".csv"):
        code = main(["fit", "--profile", str(path), "--out", str(out)])
    else:
        code = main(["predict", "--model", str(path), "--concurrency", "4"])
    assert code == 2
    assert message in capsys.readouterr().err.replace("\n", " ")
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["fit", "--profile", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "m.json")])
    assert code == 2
    assert "nope.csv: cannot open" in capsys.readouterr().err


def test_non_positive_concurrency_is_rejected_by_the_parser() -> None:
    model = EXAMPLES / "model-llama-3.1-8b-h100.json"
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", "--model", str(model), "--concurrency", "0"])
    assert exit_info.value.code == 2


def test_predict_at_a_rate_reports_percentiles_and_overload(
    capsys: pytest.CaptureFixture[str],
) -> None:
    model = str(EXAMPLES / "model-llama-3.1-8b-h100.json")
    assert main(["predict", "--model", model, "--rate", "5", "--json"]) == 0
    ok = json.loads(capsys.readouterr().out)
    assert ok["statistic"] == "p99" and ok["stable"] and ok["ttft_s"] > ok["tpot_s"] > 0
    assert main(["predict", "--model", model, "--rate", "500", "--json"]) == 0
    overloaded = json.loads(capsys.readouterr().out)
    assert not overloaded["stable"] and overloaded["ttft_s"] is None


def test_predict_takes_a_bundled_profile_by_name_and_says_which_statistic(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["predict", "--profile", "llama-3.1-8b-a100-80gb", "--json"]
    assert main([*args, "--concurrency", "4"]) == 0
    mean = json.loads(capsys.readouterr().out)
    assert mean["statistic"] == "mean" and mean["model"] == "llama-3.1-8b-a100-80gb"
    assert main([*args, "--rate", "2", "--percentile", "90"]) == 0
    p90 = json.loads(capsys.readouterr().out)
    assert p90["statistic"] == "p90" and p90["ttft_s"] > 0 and p90["tpot_s"] > 0
    assert main(["predict", "--profile", "nope", "--concurrency", "1"]) == 2
    assert "unknown profile 'nope'" in capsys.readouterr().err


def test_profiles_lists_gpu_model_vllm_version_and_sources(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["profiles", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    h100 = rows["llama-3.1-8b-h100"]
    assert h100["gpu"] == "H100-80GB" and h100["vllm_version"] == "0.8.4"
    assert any("microsoft/vidur" in s for s in h100["sources"])
    assert any("inference-sim/inference-sim" in s for s in h100["sources"])


def test_fit_reads_vllm_bench_serve_results_and_holds_levels_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tierscale_predictor import latency, profiles

    truth = latency.LatencyModel.from_profile(profiles.load_profile("llama-3.1-8b-h100"))
    files = []
    for c in (1, 4, 16):
        pred = latency.predict_at_concurrency(truth, c, 512, 33)
        n = 4
        result = {
            "max_concurrency": c,
            "request_rate": "inf",
            "input_lens": [512] * n,
            "output_lens": [33] * n,
            "ttfts": [pred.ttft_s] * n,
            "itls": [[pred.tpot_s] * 32] * n,
        }
        path = tmp_path / f"c{c}.json"
        path.write_text(json.dumps(result))
        files.append(str(path))
    out = tmp_path / "m.json"
    assert main(["fit", "--bench-json", *files, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "held-out MAPE" in printed and out.exists()
