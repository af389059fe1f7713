"""`tierscale calibrate`: measure a vLLM endpoint with a short sweep and fit a model of it.

Runs closed-loop concurrency levels and Poisson rate levels, each with two prompt and two
output lengths, against any OpenAI-compatible vLLM endpoint (`/v1/completions`,
streaming, prompts as token-id lists so their length is exact, `ignore_eos` so every
answer has its requested length). Every run is bounded in time, and the whole sweep in
`--max-duration-s` (default 300 s): the plan is refused before anything is sent if it
cannot fit. Writes the measurements as a sweep CSV (`concurrency|rate_rps,
prompt_tokens, output_tokens, ttft_s, tpot_s`: means per run, client side), fits TTFT and
TPOT from the base profile, prints the error at every level with that level held out,
and writes the model JSON. This is how to get a model for your own GPU, model and vLLM
version (docs/predictor.md, "Calibration kit").
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import dataclasses
import json
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
from rich.console import Console
from rich.table import Table

from tierscale_predictor import latency, modelfile, profiles, requestfit
from tierscale_predictor.requestfit import LevelData


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers like 1,4,16, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected integers >= 1, got {text!r}")
    return values


def _fractions(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 0.3,0.6, got {text!r}") from None
    if any(not 0 < v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"rate fractions must be in (0, 1), got {text!r}")
    return values


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "calibrate",
        help="run a short sweep against a vLLM endpoint, fit TTFT and TPOT, write a model",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--endpoint", required=True, help="base URL, e.g. http://vllm:8000")
    parser.add_argument("--model", required=True, help="served model name")
    parser.add_argument(
        "--base-profile",
        default="llama-3.1-8b-h100",
        help="bundled profile to start from (limits, KV, roofline; default %(default)s)",
    )
    parser.add_argument("--concurrency", type=_ints, default=[1, 4, 16], metavar="N,N,...")
    parser.add_argument(
        "--rate-fractions",
        type=_fractions,
        default=[0.3, 0.6],
        metavar="F,F",
        help="Poisson levels at these fractions of the request throughput measured at the "
        "highest concurrency (per request shape)",
    )
    parser.add_argument("--prompt-tokens", type=_ints, default=[256, 2048], metavar="P,P")
    parser.add_argument("--output-tokens", type=_ints, default=[64, 256], metavar="O,O")
    parser.add_argument("--run-s", type=float, default=12.0, help="seconds per run (bound)")
    parser.add_argument("--max-duration-s", type=float, default=300.0, help="whole sweep")
    parser.add_argument("--path", default="/v1/completions")
    parser.add_argument("--csv", type=Path, default=Path("calibration-sweep.csv"))
    parser.add_argument("--out", type=Path, default=Path("calibrated-model.json"))
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=run)


@dataclass(frozen=True, slots=True)
class _Result:
    ok: bool
    prompt_tokens: int
    output_tokens: int
    ttft_s: float
    tpot_s: float | None
    started_s: float


@dataclass(frozen=True, slots=True)
class _Run:
    kind: str
    load: float
    prompt_tokens: int
    output_tokens: int
    results: list[_Result]
    wall_s: float

    def level(self) -> LevelData | None:
        ok = [r for r in self.results if r.ok]
        if not ok:
            return None
        tpots = [r.tpot_s for r in ok if r.tpot_s is not None]
        return LevelData(
            kind=self.kind,
            load=self.load,
            prompt_tokens=float(np.mean([r.prompt_tokens for r in ok])),
            output_tokens=float(np.mean([r.output_tokens for r in ok])),
            ttft_s=float(np.mean([r.ttft_s for r in ok])),
            tpot_s=float(np.mean(tpots)) if tpots else None,
            requests=len(ok),
        )


async def _one(
    session: aiohttp.ClientSession, url: str, model: str, prompt: int, output: int, t0: float
) -> _Result:
    body = {
        "model": model,
        "prompt": [100 + (7919 * i) % 20000 for i in range(prompt)],
        "max_tokens": output,
        "min_tokens": output,
        "ignore_eos": True,
        "temperature": 0.0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    start = time.perf_counter()
    first = last = None
    tokens = 0
    prompt_seen = prompt
    try:
        async with session.post(url, json=body) as resp:
            if resp.status != 200:
                return _Result(False, prompt, 0, 0.0, None, start - t0)
            async for raw in resp.content:
                line = raw.strip()
                if not line.startswith(b"data: ") or line == b"data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                usage = chunk.get("usage")
                if usage:
                    prompt_seen = int(usage.get("prompt_tokens", prompt))
                if any(c.get("text") for c in chunk.get("choices") or []):
                    now = time.perf_counter()
                    first = now if first is None else first
                    last = now
                    tokens += 1
    except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError):
        return _Result(False, prompt, tokens, 0.0, None, start - t0)
    if first is None or last is None:
        return _Result(False, prompt, 0, 0.0, None, start - t0)
    tpot = (last - first) / (tokens - 1) if tokens > 1 else None
    return _Result(True, prompt_seen, tokens, first - start, tpot, start - t0)


def _jitter(rng: np.random.Generator, p: int, o: int) -> tuple[int, int]:
    return (
        max(int(round(p * rng.uniform(0.75, 1.25))), 1),
        max(int(round(o * rng.uniform(0.5, 1.5))), 2),
    )


async def _closed(
    session: aiohttp.ClientSession, url: str, model: str, c: int, p: int, o: int, run_s: float
) -> _Run:
    t0 = time.perf_counter()
    results: list[_Result] = []

    rng = np.random.default_rng(1000 * c + p + o)

    async def client(i: int) -> None:
        await asyncio.sleep(run_s * 0.1 * i / c)  # staggered starts
        while time.perf_counter() - t0 < run_s:
            # Lengths vary +-25% (prompt) and +-50% (output) around the level's: identical
            # requests in a closed loop phase-lock (prefilled together, done together),
            # which no real traffic does.
            pp, oo = _jitter(rng, p, o)
            results.append(await _one(session, url, model, pp, oo, t0))

    await asyncio.gather(*(client(i) for i in range(c)))
    warm = run_s * 0.2  # the first fifth fills the batch
    kept = [r for r in results if r.started_s >= warm] or results
    return _Run("concurrency", float(c), p, o, kept, time.perf_counter() - t0)


async def _poisson(
    session: aiohttp.ClientSession,
    url: str,
    model: str,
    rate: float,
    p: int,
    o: int,
    run_s: float,
    rng: np.random.Generator,
) -> _Run:
    t0 = time.perf_counter()
    tasks = []
    at = float(rng.exponential(1.0 / rate))
    while at < run_s * 0.8:  # leave time for the last requests to finish
        delay = t0 + at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        pp, oo = _jitter(rng, p, o)
        tasks.append(asyncio.create_task(_one(session, url, model, pp, oo, t0)))
        at += float(rng.exponential(1.0 / rate))
    done = await asyncio.wait_for(asyncio.gather(*tasks), timeout=max(run_s, 60.0))
    return _Run("rate", rate, p, o, list(done), time.perf_counter() - t0)


async def _sweep(args: argparse.Namespace, console: Console) -> list[_Run]:
    url = args.endpoint.rstrip("/") + args.path
    rng = np.random.default_rng(args.seed)
    shapes = [(p, o) for p in args.prompt_tokens for o in args.output_tokens]
    runs: list[_Run] = []
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10.0, sock_read=60.0)
    connector = aiohttp.TCPConnector(limit=1000)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        for p, o in shapes:
            for c in args.concurrency:
                run = await _closed(session, url, args.model, c, p, o, args.run_s)
                runs.append(run)
                _progress(console, run)
            top = runs[-1]
            ok = [r for r in top.results if r.ok]
            throughput = len(ok) / max(top.wall_s * 0.8, 1e-9)
            for frac in args.rate_fractions:
                rate = round(max(frac * throughput, 0.05), 3)
                run = await _poisson(session, url, args.model, rate, p, o, args.run_s, rng)
                runs.append(run)
                _progress(console, run)
    return runs


def _progress(console: Console, run: _Run) -> None:
    ok = sum(r.ok for r in run.results)
    load = f"concurrency {run.load:g}" if run.kind == "concurrency" else f"{run.load:g} req/s"
    console.print(
        f"  {load:>18} {run.prompt_tokens:>6}/{run.output_tokens:<5} tokens: "
        f"{ok}/{len(run.results)} ok in {run.wall_s:.1f} s",
        highlight=False,
    )


def _write_csv(path: Path, levels: list[LevelData]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["concurrency", "rate_rps", "prompt_tokens", "output_tokens", "ttft_s", "tpot_s"]
        )
        for lv in levels:
            writer.writerow(
                [
                    f"{lv.load:g}" if lv.kind == "concurrency" else "",
                    f"{lv.load:g}" if lv.kind == "rate" else "",
                    f"{lv.prompt_tokens:.1f}",
                    f"{lv.output_tokens:.1f}",
                    f"{lv.ttft_s:.6f}" if lv.ttft_s is not None else "",
                    f"{lv.tpot_s:.6f}" if lv.tpot_s is not None else "",
                ]
            )


def run(args: argparse.Namespace) -> int:
    err = Console(stderr=True)
    console = Console()
    try:
        base = latency.LatencyModel.from_profile(profiles.load_profile(args.base_profile))
    except profiles.ProfileError as error:
        err.print(f"[red]error:[/red] {error}", highlight=False, soft_wrap=True)
        return 2
    shapes = len(args.prompt_tokens) * len(args.output_tokens)
    planned_s = shapes * (len(args.concurrency) + len(args.rate_fractions)) * args.run_s
    if planned_s > args.max_duration_s or not args.run_s > 0:
        err.print(
            f"[red]error:[/red] the sweep needs {planned_s:.0f} s ({shapes} request shapes x "
            f"{len(args.concurrency) + len(args.rate_fractions)} levels x {args.run_s:g} s), "
            f"more than --max-duration-s {args.max_duration_s:g}",
            highlight=False,
            soft_wrap=True,
        )
        return 2
    console.print(f"sweep of {args.endpoint} ({args.model}), at most {planned_s:.0f} s:")
    runs = asyncio.run(_sweep(args, console))
    failed = sum(not r.ok for run_ in runs for r in run_.results)
    levels = [lv for lv in (r.level() for r in runs) if lv is not None]
    if len(levels) < 2:
        err.print("[red]error:[/red] fewer than two levels produced answers", soft_wrap=True)
        return 1
    _write_csv(args.csv, levels)
    fitted_at = datetime.now(UTC).isoformat(timespec="seconds")
    result = requestfit.fit_levels(
        levels, base=base, source=f"calibrate:{args.endpoint}", fitted_at=fitted_at
    )
    model = dataclasses.replace(result.model, name=f"calibrated:{args.model}")
    modelfile.save_model(model, args.out)
    report_fit(console, result.report)
    console.print(f"wrote {args.csv} and {args.out}; {failed} request(s) failed", highlight=False)
    return 0 if failed == 0 else 1


def _pct(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{100 * value:+.1f}%"


def report_fit(console: Console, report: requestfit.RequestFitReport) -> None:
    table = Table(title="error by level: predicted / measured - 1 (mean TTFT, mean TPOT)")
    for col in ("level", "TTFT ms", "TPOT ms", "fit TTFT", "fit TPOT", "held-out TTFT",
                "held-out TPOT"):  # fmt: skip
        table.add_column(col, justify="right" if col != "level" else "left")
    held = {id(e.level): e for e in report.held_out}
    for e in report.in_sample:
        h = held.get(id(e.level))
        table.add_row(
            e.level.label,
            f"{1e3 * (e.level.ttft_s or 0):.1f}",
            f"{1e3 * (e.level.tpot_s or 0):.2f}",
            _pct(e.ttft_error),
            _pct(e.tpot_error),
            _pct(h.ttft_error if h else None),
            _pct(h.tpot_error if h else None),
        )
    console.print(table)
    ttft, tpot = report.held_out_mape
    if report.held_out:
        console.print(
            f"held-out MAPE (each load level predicted by a fit without it): TTFT {_pct(ttft)}"
            f", TPOT {_pct(tpot)}".replace("+", ""),
            highlight=False,
        )
    for name, value in report.fitted:
        console.print(f"  {name} = {value:.4g}", highlight=False)
    for note in report.notes:
        console.print(f"note: {note}", highlight=False)
