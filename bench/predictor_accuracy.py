"""Accuracy report of the Llama-3.1-8B profiles against public data (a benchmark, not a test).

Data sets (none is in this repository; docs/predictor.md says where to get them):
  vidur-*   Vidur's measured linear-layer times per step (microsoft/vidur, MIT), via
            --vidur-dir: a lower bound of any real step with that many tokens.
  blis-*    BLIS's published jointly fitted model of real vLLM 0.8.4 runs (Apache-2.0;
            coefficients quoted in bench/refit_profiles.py), replayed on the engine:
            closed-loop sweeps, bursts of 10/80/320 requests and Poisson rates. It is a
            model validated by its authors against their measurements, not measurements.
  bench-json  any directory of `vllm bench serve --save-result` files (--data-dir
            DIR/<profile-name>/*.json): per level, mean/p50/p99 errors of the profile.

For each: error before the refit (the previous profiles: BLIS's step terms alone), after
the refit (the bundled profiles), and after the calibration kit's fit on that data set's
own levels with each load level held out.

    .venv/bin/python bench/predictor_accuracy.py --vidur-dir /work/data/public-vllm/vidur \
        [--data-dir DIR] --out docs/predictor.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from refit_profiles import BLIS, BLIS_KV_BLOCKS, linear_layer_curve  # noqa: E402

from tierscale_predictor import engine, loadgen, profilecsv, requestfit  # noqa: E402
from tierscale_predictor.latency import LatencyModel  # noqa: E402
from tierscale_predictor.profiles import StepProfile, load_profile  # noqa: E402
from tierscale_predictor.requestfit import LevelData  # noqa: E402

NAMES = {"H100": "llama-3.1-8b-h100", "A100-80": "llama-3.1-8b-a100-80gb"}
OLD_CONTEXT = {"H100": 5.0e-8, "A100-80": 8.2e-8}
MARK_START, MARK_END = "<!-- bench:accuracy:start -->", "<!-- bench:accuracy:end -->"


def before_profile(gpu: str) -> StepProfile:
    """The profile as bundled before the refit: BLIS's step terms alone."""
    b = BLIS[gpu]["beta"]
    return StepProfile(
        name=f"before-{gpu}",
        model="",
        gpu=gpu,
        base_s=b[0] * 1e-6,
        prefill_s_per_token=b[1] * 1e-6,
        decode_s_per_seq=b[2] * 1e-6,
        context_s_per_token=OLD_CONTEXT[gpu],
        kv_capacity_tokens=467200,
    )


def blis_profile(gpu: str) -> StepProfile:
    """BLIS's published model: step = beta (no KV term), alpha outside the step."""
    b, a = BLIS[gpu]["beta"], BLIS[gpu]["alpha"]
    return StepProfile(
        name=f"blis-{gpu}",
        model="",
        gpu=gpu,
        base_s=b[0] * 1e-6,
        prefill_s_per_token=b[1] * 1e-6,
        decode_s_per_seq=b[2] * 1e-6,
        context_s_per_token=0.0,
        kv_capacity_tokens=BLIS_KV_BLOCKS * 16,
        request_overhead_s=a[0] * 1e-6,
        request_overhead_s_per_prompt_token=a[1] * 1e-6,
        output_s_per_token=a[2] * 1e-6,
    )


def pct(x: float | None) -> str:
    return "-" if x is None or not np.isfinite(x) else f"{100 * x:+.0f}%"


def vidur_section(vidur_dir: Path) -> list[str]:
    lines = [
        "### Step time against Vidur's measured linear layers (a lower bound)",
        "",
        "Profile step at zero context (attention excluded, as in Vidur's linear-layer "
        "profile) / measured linear-layer time - 1. Below -0% the profile claims a step "
        "faster than the linear layers alone take. H100: Vidur's Llama-2-7B scaled by the "
        "A100 Llama-3-8B/Llama-2-7B ratio.",
        "",
        "| GPU | step | measured (ms) | before refit | after refit |",
        "|---|---|---|---|---|",
    ]
    a38 = linear_layer_curve(vidur_dir, "a100", "Meta-Llama-3-8B")
    a27 = linear_layer_curve(vidur_dir, "a100", "Llama-2-7b-hf")
    h27 = linear_layer_curve(vidur_dir, "h100", "Llama-2-7b-hf")
    curves = {
        "A100-80": dict(zip(a38[0].tolist(), a38[1].tolist(), strict=True)),
        "H100": {
            n: t
            * dict(zip(a38[0].tolist(), a38[1].tolist(), strict=True))[n]
            / dict(zip(a27[0].tolist(), a27[1].tolist(), strict=True))[n]
            for n, t in zip(h27[0].tolist(), h27[1].tolist(), strict=True)
            if n in set(a38[0].tolist()) and n in set(a27[0].tolist())
        },
    }
    errors: dict[tuple[str, str], list[float]] = {}
    for gpu in ("H100", "A100-80"):
        before, after = before_profile(gpu), load_profile(NAMES[gpu])
        for label, prefill, decode in (
            ("decode 1", 0, 1),
            ("decode 64", 0, 64),
            ("decode 256", 0, 256),
            ("decode 512", 0, 512),
            ("decode 1024", 0, 1024),
            ("prefill 512", 512, 0),
            ("prefill 2048", 2048, 0),
            ("prefill 8192", 8192, 0),
        ):
            n = float(prefill + decode)
            measured = curves[gpu].get(n)
            if measured is None:
                continue
            e_b = before.step_s(prefill, decode, 0) / measured - 1.0
            e_a = after.step_s(prefill, decode, 0) / measured - 1.0
            errors.setdefault((gpu, "before"), []).append(e_b)
            errors.setdefault((gpu, "after"), []).append(e_a)
            lines.append(f"| {gpu} | {label} | {1e3 * measured:.1f} | {pct(e_b)} | {pct(e_a)} |")
    lines.append("")
    for gpu in ("H100", "A100-80"):
        b, a = errors[(gpu, "before")], errors[(gpu, "after")]
        lines.append(
            f"{gpu}: worst shortfall below the measured lower bound before {pct(min(b))}, "
            f"after {pct(min(a))}."
        )
    return [*lines, ""]


def replay_closed(profile: StepProfile, c: int, p: int, o: int) -> tuple[float, float]:
    timings = loadgen.closed_loop(profile, c, p, o, max(3 * c, 24))
    return float(np.mean([t.ttft_s for t in timings])), loadgen.summarize(timings).tpot_mean_s


def replay_burst(profile: StepProfile, n: int, p: int, o: int) -> tuple[float, float]:
    rng = np.random.default_rng(n)
    prompts = loadgen.lognormal_lengths(rng, p, 4 * p, n, max_tokens=8000)
    outputs = loadgen.lognormal_lengths(rng, o, 4 * o, n, max_tokens=2000)
    reqs = [engine.EngineRequest(i, 0.0, int(prompts[i]), int(outputs[i])) for i in range(n)]
    timings = engine.simulate(profile, reqs)
    tpots = [t.tpot_s for t in timings if t.output_tokens > 1]
    return float(np.mean([t.ttft_s for t in timings])), float(np.mean(tpots))


def replay_rate(profile: StepProfile, rate: float, p: int, o: int) -> LevelData:
    rng = np.random.default_rng(int(rate * 100) + p)
    reqs = loadgen.poisson_requests(rng, rate, 400, [p], [o])
    timings = [t for t in engine.simulate(profile, reqs) if t.request_id >= 40]
    ttft = np.array([t.ttft_s for t in timings])
    tpot = np.array([t.tpot_s for t in timings])
    return LevelData(
        "rate", rate, p, o, float(ttft.mean()), float(tpot.mean()),
        requests=len(timings),
        ttft_p50_s=float(np.percentile(ttft, 50)), ttft_p99_s=float(np.percentile(ttft, 99)),
        tpot_p50_s=float(np.percentile(tpot, 50)), tpot_p99_s=float(np.percentile(tpot, 99)),
    )  # fmt: skip


def blis_section(gpu: str) -> tuple[list[str], dict[str, float]]:
    ref, before, after = blis_profile(gpu), before_profile(gpu), load_profile(NAMES[gpu])
    lines = [
        f"### {NAMES[gpu]} against BLIS's published {gpu} model (request level)",
        "",
        "Mean TTFT / TPOT of the engine replaying each level with the profile, relative to "
        "the same replay with BLIS's jointly fitted alpha/beta model. Closed loops of "
        "1024/128 tokens; bursts with lognormal lengths (mean 1024/128, p99 ~4x).",
        "",
        "| level | BLIS TTFT ms | BLIS TPOT ms | before TTFT | before TPOT | after TTFT |"
        " after TPOT |",
        "|---|---|---|---|---|---|---|",
    ]
    errs: dict[str, list[float]] = {k: [] for k in ("bt", "bp", "at", "ap")}
    levels = [("closed", c) for c in (1, 4, 16, 64)] + [("burst", n) for n in (10, 80, 320)]
    for kind, load in levels:
        run = replay_closed if kind == "closed" else replay_burst
        r_t, r_p = run(ref, load, 1024, 128)
        b_t, b_p = run(before, load, 1024, 128)
        a_t, a_p = run(after, load, 1024, 128)
        row = (b_t / r_t - 1, b_p / r_p - 1, a_t / r_t - 1, a_p / r_p - 1)
        for key, v in zip(("bt", "bp", "at", "ap"), row, strict=True):
            errs[key].append(abs(v))
        label = f"concurrency {load}" if kind == "closed" else f"burst of {load}"
        lines.append(
            f"| {label} | {1e3 * r_t:.1f} | {1e3 * r_p:.2f} | "
            + " | ".join(pct(v) for v in row)
            + " |"
        )
    summary = {k: float(np.mean(v)) for k, v in errs.items()}
    lines += [
        "",
        f"MAPE over these levels: before TTFT {100 * summary['bt']:.0f}%, TPOT "
        f"{100 * summary['bp']:.0f}%; after TTFT {100 * summary['at']:.0f}%, TPOT "
        f"{100 * summary['ap']:.0f}%.",
        "",
    ]
    return lines, summary


RATES = {"H100": (1.0, 3.0, 6.0, 9.0), "A100-80": (0.5, 1.5, 3.0, 4.5)}
"""Poisson levels per GPU, below saturation of BLIS's model (its A100 steps are ~2x)."""


def calibration_section(gpu: str) -> list[str]:
    ref = blis_profile(gpu)
    rates = RATES[gpu]
    levels = [replay_rate(ref, rate, p, o) for rate in rates for p, o in ((256, 64), (2048, 256))]
    base = LatencyModel.from_profile(load_profile(NAMES[gpu]))
    result = requestfit.fit_levels(levels, base=base)
    lines = [
        f"### Calibration kit on the BLIS {gpu} model's own Poisson sweep, levels held out",
        "",
        f"Rates {'/'.join(f'{r:g}' for r in rates)} req/s x (256/64, 2048/256 tokens), "
        "360 requests per level; each "
        "rate predicted by a fit (from the bundled profile) on the other three rates. "
        "Means; p50/p99 of the same replay for reference.",
        "",
        "| level | TTFT mean ms | p50 | p99 | held-out TTFT | TPOT mean ms | p50 | p99 |"
        " held-out TPOT |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for e in result.report.held_out:
        lv = e.level
        lines.append(
            f"| {lv.label} | {1e3 * (lv.ttft_s or 0):.1f} | {1e3 * (lv.ttft_p50_s or 0):.1f} | "
            f"{1e3 * (lv.ttft_p99_s or 0):.1f} | {pct(e.ttft_error)} | "
            f"{1e3 * (lv.tpot_s or 0):.2f} | {1e3 * (lv.tpot_p50_s or 0):.2f} | "
            f"{1e3 * (lv.tpot_p99_s or 0):.2f} | {pct(e.tpot_error)} |"
        )
    ttft, tpot = result.report.held_out_mape
    lines += ["", f"Held-out MAPE: TTFT {pct(ttft)}, TPOT {pct(tpot)}.".replace("+", ""), ""]
    return lines


def bench_json_section(data_dir: Path) -> list[str]:
    lines = ["### `vllm bench serve` result sets (--data-dir)", ""]
    found = False
    for gpu, name in NAMES.items():
        files = sorted((data_dir / name).glob("*.json"))
        if not files:
            continue
        found = True
        levels = profilecsv.read_bench_results(files)
        before = LatencyModel.from_profile(before_profile(gpu))
        after = LatencyModel.from_profile(load_profile(name))
        fit = requestfit.fit_levels(levels, base=after)
        held = {id(e.level): e for e in fit.report.held_out}
        lines += [
            f"{name}: {len(files)} files in {data_dir / name}",
            "",
            "| level | TTFT ms | TPOT ms | before TTFT | before TPOT | after TTFT | after TPOT |"
            " held-out TTFT | held-out TPOT |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for lv in levels:
            b = requestfit.LevelError(lv, *requestfit.predict_level(before, lv))
            a = requestfit.LevelError(lv, *requestfit.predict_level(after, lv))
            h = held.get(id(lv))
            lines.append(
                f"| {lv.label} | {1e3 * (lv.ttft_s or 0):.1f} | {1e3 * (lv.tpot_s or 0):.2f} | "
                f"{pct(b.ttft_error)} | {pct(b.tpot_error)} | {pct(a.ttft_error)} | "
                f"{pct(a.tpot_error)} | {pct(h.ttft_error if h else None)} | "
                f"{pct(h.tpot_error if h else None)} |"
            )
        lines.append("")
    if not found:
        lines += [f"No `<profile>/*.json` result files under {data_dir}.", ""]
    return lines


def write_section(out: Path, body: list[str]) -> None:
    text = out.read_text()
    block = "\n".join([MARK_START, *body, MARK_END])
    if MARK_START in text:
        head, rest = text.split(MARK_START, 1)
        text = head + block + rest.split(MARK_END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    out.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vidur-dir", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None, help="markdown file to update")
    args = parser.parse_args()
    body = [
        "## Accuracy against public data (generated)",
        "",
        "Generated by `.venv/bin/python bench/predictor_accuracy.py --vidur-dir DIR"
        + (" --data-dir DIR" if args.data_dir else "")
        + " --out docs/predictor.md`.",
        "",
    ]
    body += vidur_section(args.vidur_dir)
    for gpu in ("H100", "A100-80"):
        lines, _ = blis_section(gpu)
        body += lines
        body += calibration_section(gpu)
    if args.data_dir is not None:
        body += bench_json_section(args.data_dir)
    print("\n".join(body))
    if args.out is not None:
        write_section(args.out, body)


if __name__ == "__main__":
    main()
