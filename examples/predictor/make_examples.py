"""Regenerate the example measurement CSVs of this folder from the engine model.

    .venv/bin/python examples/predictor/make_examples.py

Deterministic (seeded). `saber-qwen2.5-coder-3b.csv` is not generated: it is SABER's
published speed-vs-load data (arXiv 2506.19677) written as TPOT = 1 / speed.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from tierscale_predictor import loadgen
from tierscale_predictor.engine import Replica
from tierscale_predictor.profiles import load_profile

HERE = Path(__file__).resolve().parent


def steps_csv(path: Path, rng: np.random.Generator) -> None:
    profile = load_profile("llama-3.1-8b-h100")
    rows: list[tuple[int, int, int, float]] = []
    for rate, (p_mean, p99, o_mean, o99) in (
        (4.0, (1155, 4142, 211, 601)),
        (18.0, (1155, 4142, 211, 601)),
        (30.0, (300, 1200, 150, 500)),
    ):
        prompts = loadgen.lognormal_lengths(rng, p_mean, p99, 5000, max_tokens=8000)
        outputs = loadgen.lognormal_lengths(rng, o_mean, o99, 5000, max_tokens=2000)
        replica = Replica(profile, record_steps=True)
        for request in loadgen.poisson_requests(rng, rate, 150, prompts, outputs):
            replica.submit(request)
        replica.drain()
        assert replica.step_records is not None
        picks = rng.choice(len(replica.step_records), 200, replace=False)
        for i in sorted(picks):
            r = replica.step_records[i]
            noisy = r.step_s * rng.normal(1.0, 0.02)  # 2% measurement noise
            rows.append((r.prefill_tokens, r.decode_seqs, r.context_tokens, round(noisy, 7)))
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["prefill_tokens", "decode_seqs", "context_tokens", "step_s"])
        writer.writerows(rows)


def sweep_csv(path: Path) -> None:
    profile = load_profile("llama-3.1-8b-h100")
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["concurrency", "prompt_tokens", "output_tokens", "ttft_s", "tpot_s"])
        for prompt, output in ((512, 128), (2048, 256)):
            for concurrency in (1, 4, 16, 32, 64, 128):
                timings = loadgen.closed_loop(profile, concurrency, prompt, output, concurrency + 8)
                summary = loadgen.summarize(timings)
                ttft = float(np.mean([t.ttft_s for t in timings]))
                writer.writerow(
                    [concurrency, prompt, output, round(ttft, 6), round(summary.tpot_mean_s, 7)]
                )


if __name__ == "__main__":
    steps_csv(HERE / "steps-llama-3.1-8b-h100.csv", np.random.default_rng(2026))
    sweep_csv(HERE / "sweep-llama-3.1-8b-h100.csv")
