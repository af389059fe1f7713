"""`tierscale calibrate` end to end against the simulated vLLM server (standalone pod, no
cluster): a compressed sweep (2 s runs), the CSV it writes, the model it fits, and the
error at a load level the fit never saw."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from tierscale_testbed.simvllm import process

from tierscale.cli import main
from tierscale_predictor import latency, modelfile, profilecsv, profiles, requestfit

PROFILE = "llama-3.1-8b-h100"  # what the simulated server plays (its default profile)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("calibrate-simvllm")
    with process.running(
        None,
        root / "discovery",
        root / "simvllm.log",
        extra_args=("--standalone-pods", "1", "--profile", PROFILE),
    ) as sim:
        (endpoint,) = sim.wait_for_serving("standalone", "sim", 1)
        yield f"http://127.0.0.1:{endpoint.port}"


@pytest.mark.e2e
def test_calibrate_fits_the_server_and_predicts_a_held_out_level(
    server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep, out = tmp_path / "sweep.csv", tmp_path / "model.json"
    code = main(
        [
            *("calibrate", "--endpoint", server, "--model", "meta-llama/Llama-3.1-8B-Instruct"),
            *("--base-profile", PROFILE, "--concurrency", "1,4,8", "--rate-fractions", "0.5"),
            *("--prompt-tokens", "128,1024", "--output-tokens", "16,64", "--run-s", "2"),
            *("--max-duration-s", "60", "--csv", str(sweep), "--out", str(out)),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "held-out MAPE" in printed
    levels = profilecsv.sweep_levels(
        profilecsv.read_profile_csv(sweep).sweep or pytest.fail("no sweep"), origin=str(sweep)
    )
    assert len(levels) == 16 and {lv.kind for lv in levels} == {"concurrency", "rate"}
    assert json.loads(out.read_text())["kind"] == "tierscale.latency-model"

    # Hold out every run at concurrency 4, fit on the rest, predict what was measured there.
    base = latency.LatencyModel.from_profile(profiles.load_profile(PROFILE))
    train = [lv for lv in levels if lv.key != ("concurrency", 4.0)]
    fitted = requestfit.fit_levels(train, base=base, hold_out=False).model
    # Median over the level's four request shapes: on a shared 2-core machine one 2 s run
    # can be starved of CPU (a 124-token prompt once showed 160 ms of client TTFT).
    errors = [
        requestfit.LevelError(lv, *requestfit.predict_level(fitted, lv, forward="analytic"))
        for lv in levels
        if lv.key == ("concurrency", 4.0)
    ]
    assert len(errors) == 4
    ttft_errors = sorted(abs(e.ttft_error or 0.0) for e in errors)
    tpot_errors = sorted(abs(e.tpot_error or 0.0) for e in errors)
    assert (ttft_errors[1] + ttft_errors[2]) / 2 < 0.25, ttft_errors
    assert (tpot_errors[1] + tpot_errors[2]) / 2 < 0.10, tpot_errors

    # The fitted model recovers the server profile's TPOT at loads it was never run at;
    # its TTFT adds what the client sees and the profile does not model: HTTP, streaming.
    model = modelfile.load_model(out)
    for c, p, o in ((6, 512, 48), (2, 800, 40)):
        got = latency.predict_closed_loop(model, c, p, o)
        truth = latency.predict_closed_loop(base, c, p, o)
        assert got.tpot_s == pytest.approx(truth.tpot_s, rel=0.10)
        assert truth.ttft_s - 0.005 <= got.ttft_s <= truth.ttft_s + 0.03


@pytest.mark.e2e
def test_a_sweep_longer_than_its_budget_is_refused_before_sending(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(
        [
            *("calibrate", "--endpoint", "http://127.0.0.1:9", "--model", "m"),
            *("--run-s", "60", "--max-duration-s", "300"),
        ]
    )
    assert code == 2
    assert "more than --max-duration-s 300" in capsys.readouterr().err.replace("\n", " ")
