"""Accuracy report of the Llama-3.1-8B profiles against public data (a benchmark, not a test).

Data sets (none is in this repository; docs/predictor.md says where to get them), all
under --data-dir (default /work/data/public-vllm):
  lambda-vllm-benchmark/  real vLLM 0.6.0 bursts (LambdaLabsML/vllm-benchmark, commits
            a4f9f43 (H100) and a9b42a5 (A100)): `benchmark_serving.py --save-result`
            files of Meta-Llama-3-8B-Instruct on 1xH100-80GB-SXM and 1xA100-80GB-SXM,
            ShareGPT bursts of 10..320 requests; per level the published mean/p50/p99
            TTFT and TPOT against the engine replaying the burst with the recorded
            per-request lengths (see REAL_SETS).
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

    .venv/bin/python bench/predictor_accuracy.py --data-dir /work/data/public-vllm \
        [--bench-json-dir DIR] --out docs/predictor.md
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from refit_profiles import BLIS, BLIS_KV_BLOCKS, linear_layer_curve  # noqa: E402

from tierscale_predictor import engine, loadgen, profilecsv, requestfit  # noqa: E402
from tierscale_predictor.latency import LatencyModel  # noqa: E402
from tierscale_predictor.profiles import (  # noqa: E402
    StepProfile,
    load_profile,
    profile_from_dict,
)
from tierscale_predictor.requestfit import LevelData  # noqa: E402

NAMES = {"H100": "llama-3.1-8b-h100", "A100-80": "llama-3.1-8b-a100-80gb"}
OLD_CONTEXT = {"H100": 5.0e-8, "A100-80": 8.2e-8}
BEFORE_COMMIT = "348b821"
"""main's commit before the refit: its bundled profiles are the 'before' column."""
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


# ---- real vLLM measurements ------------------------------------------------------------


@dataclass(frozen=True)
class RealSet:
    """One public data set of real vLLM runs and the server settings they were made with."""

    key: str
    title: str
    profile: str
    files: str
    """Glob under --data-dir."""
    max_num_batched_tokens: int
    max_num_seqs: int
    setup: str


REAL_SETS = (
    RealSet(
        key="lambda-h100",
        title="LambdaLabsML/vllm-benchmark, Meta-Llama-3-8B-Instruct on 1xH100-80GB-SXM",
        profile="llama-3.1-8b-h100",
        files="lambda-vllm-benchmark/results/prompt_*/1xH100-80GB-SXM/"
        "Meta-Llama-3-8B-Instruct_tp1_len2048.json",
        max_num_batched_tokens=2048,
        max_num_seqs=256,
        setup="vLLM 0.6.0 (V0 engine), --max-model-len 2048, --max-num-seqs 256, "
        "--num-scheduler-steps 10 (ITLs arrive in chunks of ~10 tokens), no chunked "
        "prefill, so max_num_batched_tokens = max(max_model_len, 2048) = 2048; "
        "`benchmark_serving.py --dataset-name sharegpt --request-rate inf`, run 2024-09-07",
    ),
    RealSet(
        key="lambda-a100",
        title="LambdaLabsML/vllm-benchmark, Meta-Llama-3-8B-Instruct on 1xA100-80GB-SXM",
        profile="llama-3.1-8b-a100-80gb",
        files="lambda-vllm-benchmark/results/prompt_*/1xA100-80GB-SXM/"
        "Meta-Llama-3-8B-Instruct_tp1_len2000.json",
        max_num_batched_tokens=2048,
        max_num_seqs=256,
        setup="same run as the H100 set (vLLM 0.6.0, multi-step 10, --max-model-len 2000, "
        "so max_num_batched_tokens 2048), 2024-09-07",
    ),
)


def before_commit_profile(name: str) -> StepProfile:
    """The bundled profile as it was at main's commit BEFORE_COMMIT (git history)."""
    path = f"{BEFORE_COMMIT}:predictor/tierscale_predictor/profiles/{name}.json"
    out = subprocess.run(["git", "-C", str(ROOT), "show", path], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"cannot read {path} from git ({out.stderr.strip()}): need the history")
    return profile_from_dict(json.loads(out.stdout), origin=path)


@dataclass(frozen=True)
class Stats:
    """A level's statistics computed as `benchmark_serving.py` computes them."""

    ttft_mean_s: float
    ttft_p50_s: float
    ttft_p99_s: float
    tpot_mean_s: float
    tpot_p50_s: float
    tpot_p99_s: float

    @classmethod
    def measured(cls, lv: LevelData) -> Stats:
        return cls(
            lv.ttft_s or np.nan, lv.ttft_p50_s or np.nan, lv.ttft_p99_s or np.nan,
            lv.tpot_s or np.nan, lv.tpot_p50_s or np.nan, lv.tpot_p99_s or np.nan,
        )  # fmt: skip

    @classmethod
    def replayed(cls, model: LatencyModel, lv: LevelData) -> Stats:
        """Replay the burst; the tool's arithmetic: the mean TTFT over requests with output
        (as the loader corrected the published one), its median and p99 over all requests
        with a 0 for each request without output (as published); TPOT over requests with
        more than one output token."""
        timings = requestfit.replay_burst(model, lv)
        ttft = np.array([t.ttft_s for t in timings])
        with_zeros = np.concatenate([ttft, np.zeros(requestfit.empty_requests(lv))])
        tpot = np.array([t.tpot_s for t in timings if t.output_tokens > 1])
        return cls(
            float(ttft.mean()),
            float(np.percentile(with_zeros, 50)),
            float(np.percentile(with_zeros, 99)),
            float(tpot.mean()),
            float(np.percentile(tpot, 50)),
            float(np.percentile(tpot, 99)),
        )


STAT_NAMES = ("mean", "p50", "p99")


def _errors(pred: Stats, obs: Stats, metric: str) -> list[float]:
    return [
        getattr(pred, f"{metric}_{s}_s") / getattr(obs, f"{metric}_{s}_s") - 1.0 for s in STAT_NAMES
    ]


def load_real_set(data_dir: Path, spec: RealSet) -> list[LevelData]:
    files = sorted(data_dir.glob(spec.files))
    if not files:
        return []
    levels = [
        requestfit.level_from_bench_result(json.loads(f.read_text()), origin=str(f)) for f in files
    ]
    return sorted(levels, key=lambda lv: lv.load)


def with_limits(model: LatencyModel, spec: RealSet) -> LatencyModel:
    """The model with the run's server limits (the profile's are vLLM >= 0.8 defaults)."""
    return replace(
        model,
        max_num_batched_tokens=spec.max_num_batched_tokens,
        max_num_seqs=spec.max_num_seqs,
    )


def held_out_models(
    levels: Sequence[LevelData], base: LatencyModel
) -> dict[tuple[str, float], LatencyModel]:
    """The calibration kit's fit (`requestfit.fit_levels`) on all levels but one, per level."""
    out = {}
    for key in sorted({lv.key for lv in levels}):
        train = [lv for lv in levels if lv.key != key]
        out[key] = requestfit.fit_levels(train, base=base, hold_out=False).model
    return out


def _mape(rows: list[list[float]], column: int) -> float:
    return float(np.mean([abs(r[column]) for r in rows]))


def real_section(data_dir: Path, spec: RealSet) -> list[str]:
    levels = load_real_set(data_dir, spec)
    if not levels:
        return [f"### {spec.title}", "", f"No files `{spec.files}` under {data_dir}.", ""]
    before = with_limits(LatencyModel.from_profile(before_commit_profile(spec.profile)), spec)
    after = with_limits(LatencyModel.from_profile(load_profile(spec.profile)), spec)
    full = requestfit.fit_levels(levels, base=after, hold_out=False)
    held = held_out_models(levels, after)
    lines = [
        f"### {spec.title} (profile `{spec.profile}`)",
        "",
        f"Server: {spec.setup}. Each level is one burst (all requests sent at once), "
        "replayed on the engine with the recorded prompt and output lengths and the "
        f"run's limits (max_num_batched_tokens {spec.max_num_batched_tokens}, max_num_seqs "
        f"{spec.max_num_seqs}). Statistics as `benchmark_serving.py` computes them "
        "(TTFT mean over requests with output; its p50/p99 include a 0 for each request "
        "that returned no text, as published). Columns: the profile at main's commit "
        f"{BEFORE_COMMIT} (before the refit), the bundled profile (after), and the "
        "calibration kit's fit (`requestfit.fit_levels`, from the bundled profile) on the "
        "other levels only (held out).",
        "",
    ]
    summary: dict[str, list[float]] = {}
    for metric, unit, scale in (("ttft", "ms", 1e3), ("tpot", "ms", 1e3)):
        lines += [
            f"{metric.upper()} (measured {unit}; errors mean / p50 / p99):",
            "",
            "| burst | requests (no output) | measured mean / p50 / p99 | before | after |"
            " held out |",
            "|---|---|---|---|---|---|",
        ]
        rows: list[list[float]] = []
        for lv in levels:
            obs = Stats.measured(lv)
            row = (
                _errors(Stats.replayed(before, lv), obs, metric)
                + _errors(Stats.replayed(after, lv), obs, metric)
                + _errors(Stats.replayed(held[lv.key], lv), obs, metric)
            )
            rows.append(row)
            measured = " / ".join(
                f"{scale * getattr(obs, f'{metric}_{s}_s'):.{0 if metric == 'ttft' else 1}f}"
                for s in STAT_NAMES
            )
            cells = [" / ".join(pct(v) for v in row[i : i + 3]) for i in (0, 3, 6)]
            lines.append(
                f"| {lv.load:g} | {lv.requests + requestfit.empty_requests(lv)} "
                f"({requestfit.empty_requests(lv)}) | {measured} | " + " | ".join(cells) + " |"
            )
        for i, which in enumerate(("before", "after", "held out")):
            for j, stat in enumerate(STAT_NAMES):
                summary[f"{metric} {stat} {which}"] = [_mape(rows, 3 * i + j)]
        lines.append("")
    lines.append("MAPE over the levels (mean / p50 / p99):")
    lines.append("")
    lines.append("| | before | after | held out (calibration kit) |")
    lines.append("|---|---|---|---|")
    for metric in ("ttft", "tpot"):
        cells = [
            " / ".join(f"{100 * summary[f'{metric} {s} {which}'][0]:.0f}%" for s in STAT_NAMES)
            for which in ("before", "after", "held out")
        ]
        lines.append(f"| {metric.upper()} | " + " | ".join(cells) + " |")
    fitted = ", ".join(
        f"{name} {value * 1e3:.3g} ms" if name in ("base_s", "request_overhead_s",
                                                  "output_s_per_token")
        else f"{name} {value * 1e6:.3g} us"
        for name, value in full.report.fitted
    )  # fmt: skip
    ttft_in, tpot_in = full.report.in_sample_mape
    lines += [
        "",
        f"Calibration kit on all {len(levels)} levels (means): {fitted}; in-sample MAPE "
        f"TTFT {pct(ttft_in)}, TPOT {pct(tpot_in)}.".replace("+", ""),
        "",
    ]
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
    parser.add_argument("--data-dir", type=Path, default=Path("/work/data/public-vllm"))
    parser.add_argument("--vidur-dir", type=Path, default=None, help="default DATA_DIR/vidur")
    parser.add_argument(
        "--bench-json-dir",
        type=Path,
        default=None,
        help="your own `vllm bench serve --save-result` files as DIR/<profile name>/*.json",
    )
    parser.add_argument("--only-real", action="store_true", help="skip the model comparisons")
    parser.add_argument("--out", type=Path, default=None, help="markdown file to update")
    args = parser.parse_args()
    command = ".venv/bin/python bench/predictor_accuracy.py --data-dir DIR" + (
        " --bench-json-dir DIR" if args.bench_json_dir else ""
    )
    body = [
        "## Accuracy against public data (generated)",
        "",
        f"Generated by `{command} --out docs/predictor.md` (DIR as in 'Public data sets').",
        "",
        "## Real vLLM measurements",
        "",
    ]
    for spec in REAL_SETS:
        body += real_section(args.data_dir, spec)
    if not args.only_real:
        body += ["## Model comparisons", ""]
        body += vidur_section(args.vidur_dir or args.data_dir / "vidur")
        for gpu in ("H100", "A100-80"):
            lines, _ = blis_section(gpu)
            body += lines
            body += calibration_section(gpu)
    if args.bench_json_dir is not None:
        body += bench_json_section(args.bench_json_dir)
    print("\n".join(body))
    if args.out is not None:
        write_section(args.out, body)


if __name__ == "__main__":
    main()
