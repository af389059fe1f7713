"""Predictor benchmarks and validation; writes its section of docs/predictor.md.

    .venv/bin/python bench/predictor.py [--quick] [--fleet-seconds 3600] [--out docs/predictor.md]

Measures (never asserted in tests; this machine is shared, so numbers are indicative):
  - accuracy: predict() p99 TTFT/TPOT versus the engine model under Poisson load at
    20-90% busy, for the bundled profiles and Azure-like request shapes; max_rate_rps
    versus the highest rate at which the engine itself meets the SLO;
  - fit time for 100k step records (CSV read + fit, and fit alone);
  - engine steps/s and simulated requests/s (one replica; a 20-replica fleet at 100 req/s
    that reads every replica's state at every arrival, as a least-loaded router does);
  - predict() and max_busy_frac() calls/s.
"""

from __future__ import annotations

import argparse
import csv
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tierscale_predictor import capacity, fit, latency, loadgen, profilecsv
from tierscale_predictor.engine import Replica, StepRecord, simulate
from tierscale_predictor.latency import LatencyModel, SloTarget, WorkloadShape
from tierscale_predictor.profiles import load_profile

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- bench:predictor:start -->", "<!-- bench:predictor:end -->"
PROFILES = ("llama-3.1-8b-h100", "llama-3.1-8b-a100-80gb", "qwen2.5-coder-3b-a100")
# Azure LLM inference traces 2023 (mean / p99 prompt and output tokens), as lognormals.
SHAPES = {"code": (2048, 7436, 28, 251), "conv": (1155, 4142, 211, 601)}
SLOS = {
    "code": (SloTarget(0.5, 0.06), SloTarget(1.0, 0.1)),
    "conv": (SloTarget(0.5, 0.03), SloTarget(1.0, 0.05)),
    "mix": (SloTarget(1.0, 0.1),),
}


@dataclass(frozen=True)
class Workload:
    prompts: np.ndarray
    outputs: np.ndarray
    shape: WorkloadShape


def workload(name: str, seed: int = 0) -> Workload:
    if name == "mix":  # half code, half conversation: the planner's mixed-shape contract
        code, conv = workload("code", seed), workload("conv", seed)
        prompts = np.concatenate([code.prompts, conv.prompts])
        outputs = np.concatenate([code.outputs, conv.outputs])
        mixed = latency.mix_shapes([(0.5, code.shape), (0.5, conv.shape)])
        return Workload(prompts, outputs, mixed)
    p_mean, p99, o_mean, o99 = SHAPES[name]
    rng = np.random.default_rng(seed)
    prompts = loadgen.lognormal_lengths(rng, p_mean, p99, 50_000, max_tokens=16_000)
    outputs = loadgen.lognormal_lengths(rng, o_mean, o99, 50_000, max_tokens=4_000)
    return Workload(prompts, outputs, loadgen.observed_shape(prompts, outputs))


def engine_summary(
    profile_name: str, wl: Workload, rate: float, n: int, seed: int = 1
) -> loadgen.LoadSummary:
    requests = loadgen.poisson_requests(
        np.random.default_rng(seed), rate, n, wl.prompts, wl.outputs
    )
    timings = simulate(load_profile(profile_name), requests)
    return loadgen.summarize([t for t in timings if t.request_id >= n // 10])


def pct(pred: float, truth: float) -> str:
    if not np.isfinite(pred):
        return "unstable"
    return f"{100 * (pred / truth - 1):+.0f}%"


def accuracy_section(n: int, loads: tuple[float, ...]) -> list[str]:
    lines = [
        "### predict() against the engine (p99, Poisson load)",
        "",
        f"{n} requests per point (first 10% dropped as warm-up). busy = rate x "
        "work_s_per_request; 'unstable' = the model predicts overload.",
        "",
        "| profile | shape | busy | rate (req/s) | TTFT p99 engine | predicted | error |"
        " TPOT p99 engine | predicted | error |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    errors_ttft: list[float] = []
    errors_tpot: list[float] = []
    for profile_name in PROFILES:
        model = LatencyModel.from_profile(load_profile(profile_name))
        for shape_name in SHAPES:
            wl = workload(shape_name)
            w = capacity.work_s_per_request(model, wl.shape)
            for u in loads:
                rate = u / w
                truth = engine_summary(profile_name, wl, rate, n)
                pred = latency.predict(model, rate, wl.shape)
                if pred.stable and u <= 0.8 and truth.ttft_p_s < 5.0:
                    errors_ttft.append(abs(pred.ttft_s / truth.ttft_p_s - 1))
                    errors_tpot.append(abs(pred.tpot_s / truth.tpot_p_s - 1))
                lines.append(
                    f"| {profile_name} | {shape_name} | {u:.1f} | {rate:.2f} | "
                    f"{truth.ttft_p_s:.3f} s | {pred.ttft_s:.3f} s | "
                    f"{pct(pred.ttft_s, truth.ttft_p_s)} | "
                    f"{1000 * truth.tpot_p_s:.1f} ms | {1000 * pred.tpot_s:.1f} ms | "
                    f"{pct(pred.tpot_s, truth.tpot_p_s)} |"
                )
    if errors_ttft:
        lines += [
            "",
            f"Over the stable points at <= 80% busy ({len(errors_ttft)}): mean |error| TTFT "
            f"{100 * np.mean(errors_ttft):.0f}% (max {100 * np.max(errors_ttft):.0f}%), "
            f"TPOT {100 * np.mean(errors_tpot):.0f}% (max {100 * np.max(errors_tpot):.0f}%).",
        ]
    return lines


def engine_max_rate(profile_name: str, wl: Workload, slo: SloTarget, hi: float, n: int) -> float:
    """Highest rate at which the engine's own p99 TTFT and TPOT meet `slo` (bisection)."""

    def ok(rate: float) -> bool:
        s = engine_summary(profile_name, wl, rate, n)
        return s.ttft_p_s <= slo.ttft_s and s.tpot_p_s <= slo.tpot_s

    lo = 0.0
    if not ok(0.02 * hi):
        return 0.0
    lo = 0.02 * hi
    for _ in range(7):
        mid = 0.5 * (lo + hi)
        if ok(mid):
            lo = mid
        else:
            hi = mid
    return lo


def capacity_section(n: int) -> list[str]:
    lines = [
        "### max_rate_rps() against the engine",
        "",
        "Engine truth: bisection (7 steps) on the Poisson rate for the highest rate at which"
        f" the engine's p99 TTFT and TPOT meet the SLO ({n} requests per run).",
        "",
        "| profile | shape | SLO TTFT / TPOT (p99) | engine max rate | predicted | error |",
        "|---|---|---|---|---|---|",
    ]
    for profile_name in PROFILES:
        model = LatencyModel.from_profile(load_profile(profile_name))
        for shape_name, slos in SLOS.items():
            wl = workload(shape_name)
            saturation = 1.0 / capacity.work_s_per_request(model, wl.shape)
            for slo in slos:
                truth = engine_max_rate(profile_name, wl, slo, saturation, n)
                pred = capacity.max_rate_rps(model, slo, wl.shape)
                err = "n/a" if truth == 0.0 else f"{100 * (pred / truth - 1):+.0f}%"
                lines.append(
                    f"| {profile_name} | {shape_name} | {1000 * slo.ttft_s:.0f} ms / "
                    f"{1000 * slo.tpot_s:.0f} ms | {truth:.2f} req/s | {pred:.2f} req/s | {err} |"
                )
    return lines


def timed(fn: Callable[[], object], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def fit_section() -> list[str]:
    profile = load_profile("llama-3.1-8b-h100")
    rng = np.random.default_rng(0)
    wl = workload("conv")
    records: list[StepRecord] = []
    rate = 2.0
    while len(records) < 100_000:
        replica = Replica(profile, record_steps=True)
        for request in loadgen.poisson_requests(rng, rate, 400, wl.prompts, wl.outputs):
            replica.submit(request)
        replica.drain()
        assert replica.step_records is not None
        records += replica.step_records
        rate = rate * 1.6 if rate < 20 else 2.0
    records = records[:100_000]
    noise = rng.normal(1.0, 0.02, len(records))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "steps.csv"
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["prefill_tokens", "decode_seqs", "context_tokens", "step_s"])
            for r, eps in zip(records, noise, strict=True):
                writer.writerow([r.prefill_tokens, r.decode_seqs, r.context_tokens, r.step_s * eps])
        data = profilecsv.read_profile_csv(path)
        assert data.steps is not None
        steps = data.steps
        total = timed(
            lambda: fit.fit_steps(
                profilecsv.read_profile_csv(path).steps or steps, rng=np.random.default_rng(0)
            )
        )
    only = timed(lambda: fit.fit_steps(steps, rng=np.random.default_rng(0)))
    knee = timed(
        lambda: fit.fit_steps(steps, rng=np.random.default_rng(0), knee_candidates=(0, 16, 32, 64))
    )
    report = fit.fit_steps(steps, rng=np.random.default_rng(0)).report
    return [
        "### fit time, 100k step records (llama-3.1-8b-h100 engine, 2% noise)",
        "",
        "| what | seconds (best of 3) |",
        "|---|---|",
        f"| read CSV + fit | {total:.2f} |",
        f"| fit only | {only:.2f} |",
        f"| fit with 4 knee candidates | {knee:.2f} |",
        "",
        f"Held-out R^2 {report.r2:.4f}, MAPE {100 * report.mape:.2f}%; coefficients: "
        + ", ".join(f"{k} {v:.4g}" for k, v in report.coefficients)
        + ".",
    ]


def engine_section(fleet_seconds: float) -> list[str]:
    profile = load_profile("llama-3.1-8b-h100")
    wl = workload("conv")
    lines = [
        "### engine speed (llama-3.1-8b-h100, conversation shape)",
        "",
        "| run | requests | engine steps | wall s | steps/s | requests/s |",
        "|---|---|---|---|---|---|",
    ]
    for label, ff in (("1 replica, 5 req/s, fast-forward", True), ("same, step by step", False)):
        requests = loadgen.poisson_requests(
            np.random.default_rng(1), 5.0, 6000, wl.prompts, wl.outputs
        )
        replica = Replica(profile, fast_forward=ff)
        started = time.perf_counter()
        for request in requests:
            replica.submit(request)
        done = replica.drain()
        wall = time.perf_counter() - started
        lines.append(
            f"| {label} | {len(done)} | {replica.steps_executed} | {wall:.2f} | "
            f"{replica.steps_executed / wall:,.0f} | {len(done) / wall:,.0f} |"
        )
    n = int(100 * fleet_seconds)
    requests = loadgen.poisson_requests(np.random.default_rng(2), 100.0, n, wl.prompts, wl.outputs)
    replicas = [Replica(profile) for _ in range(20)]
    started = time.perf_counter()
    finished = 0
    for request in requests:
        for r in replicas:
            finished += len(r.run_until(request.arrival_s))
        min(replicas, key=lambda r: r.outstanding_tokens).submit(request)
    for r in replicas:
        finished += len(r.drain())
    wall = time.perf_counter() - started
    steps = sum(r.steps_executed for r in replicas)
    lines.append(
        f"| 20 replicas, 100 req/s, {fleet_seconds:.0f} s simulated, every replica run and "
        f"read at every arrival (least outstanding tokens) | {finished} | {steps} | {wall:.2f} | "
        f"{steps / wall:,.0f} | {finished / wall:,.0f} |"
    )
    return lines


def predict_section() -> list[str]:
    model = LatencyModel.from_profile(load_profile("llama-3.1-8b-h100"))
    shape = workload("conv").shape
    slo = SloTarget(0.5, 0.03)
    calls = 2000
    t_predict = timed(lambda: [latency.predict(model, 5.0 + i * 1e-3, shape) for i in range(calls)])
    uncached = capacity.max_busy_frac.__wrapped__
    t_cap = timed(lambda: [uncached(model, slo, shape) for _ in range(200)])
    t_cached = timed(lambda: [capacity.max_rate_rps(model, slo, shape) for _ in range(calls)])
    t_ctc = timed(
        lambda: [latency.predict_at_concurrency(model, 1 + i % 64, 1024, 256) for i in range(calls)]
    )
    return [
        "### prediction speed",
        "",
        "| call | calls/s |",
        "|---|---|",
        f"| predict() (p99, quantile search) | {calls / t_predict:,.0f} |",
        f"| predict_at_concurrency() | {calls / t_ctc:,.0f} |",
        f"| max_busy_frac(), uncached (bisection) | {200 / t_cap:,.0f} |",
        f"| max_rate_rps(), cached | {calls / t_cached:,.0f} |",
    ]


TAIL_FIT_SHAPES = {**SHAPES, "short": (300, 1200, 150, 500)}


def fit_tails(n: int) -> list[str]:
    """Refit the TailParams constants against the engine (compare with DEFAULT_TAIL)."""
    from dataclasses import replace

    from scipy.optimize import minimize

    grid = []
    for profile_name in PROFILES:
        base = LatencyModel.from_profile(load_profile(profile_name))
        for p_mean, p99, o_mean, o99 in TAIL_FIT_SHAPES.values():
            rng = np.random.default_rng(0)
            prompts = loadgen.lognormal_lengths(rng, p_mean, p99, 50_000, max_tokens=16_000)
            outputs = loadgen.lognormal_lengths(rng, o_mean, o99, 50_000, max_tokens=4_000)
            wl = Workload(prompts, outputs, loadgen.observed_shape(prompts, outputs))
            w = capacity.work_s_per_request(base, wl.shape)
            for u in (0.2, 0.4, 0.6, 0.8):
                truth = engine_summary(profile_name, wl, u / w, n)
                if truth.ttft_p_s < 5.0:  # skip runs the engine itself cannot sustain
                    grid.append((profile_name, wl.shape, u / w, truth))

    def log_errors(tail: latency.TailParams) -> tuple[np.ndarray, np.ndarray]:
        ttft, tpot = [], []
        for profile_name, shape, rate, truth in grid:
            model = LatencyModel.from_profile(load_profile(profile_name), tail=tail)
            pred = latency.predict(model, rate, shape)
            if pred.stable:
                ttft.append(np.log(pred.ttft_s / truth.ttft_p_s))
                tpot.append(np.log(pred.tpot_s / truth.tpot_p_s))
        return np.array(ttft), np.array(tpot)

    tail = latency.DEFAULT_TAIL

    def ttft_loss(x: np.ndarray) -> float:
        trial = replace(tail, ttft_residual_steps=float(x[0]), ttft_queue_steps=float(x[1]))
        return float(np.sum(log_errors(trial)[0] ** 2))

    res = minimize(
        ttft_loss,
        np.array([tail.ttft_residual_steps, tail.ttft_queue_steps]),
        method="Nelder-Mead",
    )
    tail = replace(tail, ttft_residual_steps=float(res.x[0]), ttft_queue_steps=float(res.x[1]))

    def tpot_loss(x: np.ndarray) -> float:
        return float(np.sum(log_errors(replace(tail, tpot_interference=float(x[0])))[1] ** 2))

    res = minimize(tpot_loss, np.array([tail.tpot_interference]), method="Nelder-Mead")
    tail = replace(tail, tpot_interference=float(res.x[0]))
    ttft, tpot = log_errors(tail)
    ttft0, tpot0 = log_errors(latency.DEFAULT_TAIL)

    def rms(errors: np.ndarray) -> float:
        return float(np.sqrt(np.mean(errors**2)))

    shipped = latency.DEFAULT_TAIL
    return [
        "### tail constants, refitted from scratch (`--fit-tails`)",
        "",
        f"{len(grid)} engine runs ({n} requests each; 3 profiles x code/conversation/short "
        "shapes x busy 0.2-0.8, runs the engine cannot sustain left out), Nelder-Mead on "
        "squared log error of p99 TTFT, then of p99 TPOT.",
        "",
        "| constant | shipped (DEFAULT_TAIL) | refitted |",
        "|---|---|---|",
        f"| ttft_residual_steps | {shipped.ttft_residual_steps} | {tail.ttft_residual_steps:.3f} |",
        f"| ttft_queue_steps | {shipped.ttft_queue_steps} | {tail.ttft_queue_steps:.3f} |",
        f"| tpot_interference | {shipped.tpot_interference} | {tail.tpot_interference:.3f} |",
        f"| rms log error TTFT / TPOT | {rms(ttft0):.3f} / {rms(tpot0):.3f} | "
        f"{rms(ttft):.3f} / {rms(tpot):.3f} |",
    ]


def write_section(out: Path, body: list[str]) -> None:
    text = out.read_text() if out.exists() else ""
    block = "\n".join([START, *body, END])
    if START in text and END in text:
        text = re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    out.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "predictor.md")
    parser.add_argument("--quick", action="store_true", help="fewer requests per point")
    parser.add_argument("--fleet-seconds", type=float, default=600.0)
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument(
        "--fit-tails", action="store_true", help="refit the tail constants and print them only"
    )
    args = parser.parse_args()
    if args.fit_tails:
        print("\n".join(fit_tails(4000)))
        return
    command = "`.venv/bin/python bench/predictor.py" + (" --quick" if args.quick else "")
    command += f" --fleet-seconds {args.fleet_seconds:g}`"
    body = [
        "## Measured (generated)",
        "",
        f"Generated by {command} on {time.strftime('%Y-%m-%d')} (shared 2-core machine;"
        " timings are indicative).",
        "",
    ]
    n = 1500 if args.quick else 4000
    sections: list[list[str]] = []
    if not args.skip_accuracy:
        sections.append(accuracy_section(n, (0.2, 0.4, 0.6, 0.8, 0.9)))
        sections.append(capacity_section(n // 2))
        if not args.quick:
            sections.append(fit_tails(n))
    sections += [fit_section(), engine_section(args.fleet_seconds), predict_section()]
    for section in sections:
        body += [*section, ""]
        print("\n".join(section), flush=True)
    write_section(args.out, body)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
