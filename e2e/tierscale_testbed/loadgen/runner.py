"""Send a schedule open-loop (arrivals do not wait for answers), bounded in time.

Open loop is what a trace means: requests arrive when the trace says, however slow the
server is. Bounds: the schedule is already cut by count and sending time; after the last
send, in-flight requests get ``drain_timeout_s`` and are then cancelled and reported as
cut off, so a run ends by ``max_duration_s + drain_timeout_s`` whatever the server does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp

from tierscale_testbed.loadgen import client, workload


@dataclass(frozen=True, slots=True)
class RunResult:
    results: list[client.RequestResult]
    wall_s: float  # from the first scheduled send to the last answer (or the cut-off)
    send_lag_s_max: float  # worst lateness of a send against its schedule (generator health)
    sent_at_unix_s: dict[int, float] = field(default_factory=dict)
    """request index -> wall-clock time it was sent (to compare with server-side windows)."""


async def run(
    url: str,
    specs: Sequence[workload.RequestSpec],
    *,
    drain_timeout_s: float = 60.0,
    max_connections: int = 1000,
    model: str | None = None,
) -> RunResult:
    client.ensure_loopback(url)
    loop = asyncio.get_running_loop()
    connector = aiohttp.TCPConnector(limit=max_connections)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10.0, sock_read=drain_timeout_s)
    start = loop.time()
    lag_max = 0.0
    sent_at: dict[int, float] = {}
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        tasks: list[asyncio.Task[client.RequestResult]] = []
        for spec in specs:
            delay = start + spec.send_at_s - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            lag_max = max(lag_max, loop.time() - start - spec.send_at_s)
            sent_at[spec.index] = time.time()
            tasks.append(asyncio.create_task(client.send(session, url, spec, model=model)))
        if tasks:
            await asyncio.wait(tasks, timeout=drain_timeout_s)
        results = []
        for spec, task in zip(specs, tasks, strict=True):
            if task.done():
                results.append(task.result())
            else:
                task.cancel()
                results.append(
                    client.RequestResult(
                        spec.index,
                        spec.tier,
                        0,
                        False,
                        0,
                        None,
                        None,
                        None,
                        f"cut off after drain_timeout_s={drain_timeout_s}",
                    )  # fmt: skip
                )
        await asyncio.gather(*tasks, return_exceptions=True)
    return RunResult(results, loop.time() - start, lag_max, sent_at)
