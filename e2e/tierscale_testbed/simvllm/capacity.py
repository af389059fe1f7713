"""How fast can one simulator process go before its own CPU distorts latencies?

``python -m tierscale_testbed.simvllm.capacity --rates 10,40,80`` starts the simulator as
its own process (``--standalone-pods``), offers Poisson load at each rate from this process
through real loopback HTTP, and compares the client-side mean TTFT with the server's
``vllm:time_to_first_token_seconds`` mean over the same requests (scraped from /metrics).
While the simulator keeps up the two agree to a few ms; when it saturates, the client sees
delay the engine model never produced. Prints one JSON line per rate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from tierscale_testbed.loadgen import runner, workload
from tierscale_testbed.simvllm import metrics, process


def _ttft_sum_count(port: int) -> tuple[float, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    total = count = 0.0
    for family in text_string_to_metric_families(text):
        if family.name == metrics.TTFT:
            for s in family.samples:
                if s.name.endswith("_sum"):
                    total += s.value
                elif s.name.endswith("_count"):
                    count += s.value
    return total, count


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _measure(
    ports: list[int], pid: int, rate_rps: float, args: argparse.Namespace
) -> dict[str, float]:
    arrivals = workload.poisson_arrivals(
        rate_rps,
        duration_s=args.duration_s,
        prompt_tokens=args.prompt_tokens,
        output_tokens=args.output_tokens,
        rng=np.random.default_rng(0),
    )
    specs = workload.schedule(
        arrivals,
        mix={"default": 1.0},
        bounds=workload.Bounds(100_000, args.duration_s),
        time_scale=1.0,
        rng=np.random.default_rng(1),
    )
    before = [_ttft_sum_count(p) for p in ports]
    cpu0 = _cpu_s(pid)
    client_cpu0 = time.process_time()
    per_pod = [specs[i :: len(ports)] for i in range(len(ports))]  # round-robin
    results = await asyncio.gather(
        *(
            runner.run(f"http://127.0.0.1:{port}/v1/completions", s, drain_timeout_s=60.0)
            for port, s in zip(ports, per_pod, strict=True)
        )
    )
    wall_s = max(res.wall_s for res in results)
    cpu_s = _cpu_s(pid) - cpu0
    client_cpu_s = time.process_time() - client_cpu0
    await asyncio.sleep(0.2)  # the engine loop accounts the last tokens on its next tick
    after = [_ttft_sum_count(p) for p in ports]
    server_sum = sum(a[0] - b[0] for a, b in zip(after, before, strict=True))
    server_n = sum(a[1] - b[1] for a, b in zip(after, before, strict=True))
    ttfts = [r.ttft_s for res in results for r in res.results if r.ok and r.ttft_s is not None]
    return {
        "offered_rps": rate_rps,
        "sent": len(specs),
        "ok": len(ttfts),
        "achieved_rps": round(len(ttfts) / wall_s, 2),
        "client_ttft_mean_s": round(float(np.mean(ttfts)), 4) if ttfts else float("nan"),
        "server_ttft_mean_s": round(server_sum / server_n, 4) if server_n else float("nan"),
        "client_ttft_p50_s": round(float(np.median(ttfts)), 4) if ttfts else float("nan"),
        "simulator_cpu_cores": round(cpu_s / wall_s, 2),
        "client_cpu_cores": round(client_cpu_s / wall_s, 2),
        "send_lag_s_max": round(max(res.send_lag_s_max for res in results), 3),
    }


async def _main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        extra = ["--standalone-pods", str(args.pods), "--profile", args.profile]
        with process.running(None, Path(tmp) / "d", Path(tmp) / "log", extra_args=extra) as sim:
            pool = sim.wait_for_serving("standalone", "sim", args.pods)
            ports = [e.port for e in pool]
            for rate in (float(r) for r in args.rates.split(",")):
                result = await _measure(ports, sim.process.pid, rate, args)
                print(json.dumps(result), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m tierscale_testbed.simvllm.capacity")
    p.add_argument("--rates", default="10,20,40,80")
    p.add_argument("--duration-s", type=float, default=15.0)
    p.add_argument("--pods", type=int, default=1)
    p.add_argument("--prompt-tokens", type=int, default=512)
    p.add_argument("--output-tokens", type=int, default=64)
    p.add_argument("--profile", default="llama-3.1-8b-h100")
    asyncio.run(_main(p.parse_args()))


if __name__ == "__main__":
    main()
