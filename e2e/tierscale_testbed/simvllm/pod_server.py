"""One simulated vLLM pod: an aiohttp server on its own loopback port over one engine.

Lifecycle: ``start()`` binds 127.0.0.1 on a port the OS picks; ``drain()`` is what a
terminating vLLM pod does: /health turns 503 and new generation requests get 503 (so
Envoy retries them on another pod), in-flight requests run to their last token, and only
then the port closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass

import pydantic
from aiohttp import web

from tierscale_predictor import engine, profiles
from tierscale_testbed.simvllm import metrics, openai_protocol, realtime


@dataclass(frozen=True, slots=True)
class PodConfig:
    model_name: str
    profile: profiles.StepProfile
    max_model_len: int = 131072
    default_max_tokens: int = 256
    show_deprecated_metrics: bool = False
    max_num_seqs: int | None = None
    max_num_batched_tokens: int | None = None
    drain_timeout_s: float = 120.0


class PodServer:
    """The HTTP face of one engine."""

    def __init__(self, config: PodConfig, *, host: str = "127.0.0.1") -> None:
        self.config = config
        self.host = host
        replica = engine.Replica(
            config.profile,
            max_num_seqs=config.max_num_seqs,
            max_num_batched_tokens=config.max_num_batched_tokens,
        )
        self.metrics = metrics.VllmMetrics(
            model_name=config.model_name,
            max_model_len=config.max_model_len,
            cache=metrics.CacheConfig(
                block_size=config.profile.block_size_tokens,
                num_gpu_blocks=config.profile.kv_capacity_blocks,
            ),
            show_deprecated=config.show_deprecated_metrics,
        )
        self.engine = realtime.RealtimeEngine(replica, self.metrics)
        self.draining = False
        self.port = 0
        self._created = int(time.time())
        self._runner: web.AppRunner | None = None
        self._engine_task: asyncio.Task[None] | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/completions", self._completions)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/health", self._health)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/metrics", self._metrics)
        return app

    async def start(self) -> int:
        self._engine_task = asyncio.create_task(self.engine.run())
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=5.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self.port

    async def drain(self) -> None:
        """Refuse new work, finish in-flight requests (bounded), then close the port."""
        self.draining = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.engine.wait_idle(), self.config.drain_timeout_s)
        await self.stop()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._engine_task is not None:
            self._engine_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._engine_task
            self._engine_task = None

    # -- handlers --------------------------------------------------------------------------
    async def _health(self, _: web.Request) -> web.Response:
        return web.Response(status=503 if self.draining else 200)

    async def _models(self, _: web.Request) -> web.Response:
        return web.json_response(
            openai_protocol.models_response(
                self.config.model_name,
                created=self._created,
                max_model_len=self.config.max_model_len,
            )
        )

    async def _metrics(self, _: web.Request) -> web.Response:
        return web.Response(
            body=self.metrics.render(), headers={"Content-Type": metrics.CONTENT_TYPE}
        )

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, "completion")

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, "chat")

    async def _generate(
        self, request: web.Request, kind: openai_protocol.Kind
    ) -> web.StreamResponse:
        if self.draining:
            return _error(503, "server is shutting down", "ServiceUnavailableError")
        try:
            job = openai_protocol.parse_job(
                kind,
                await request.json(),
                served_model=self.config.model_name,
                default_max_tokens=self.config.default_max_tokens,
            )
        except (json.JSONDecodeError, pydantic.ValidationError) as exc:
            return _error(400, str(exc), "BadRequestError")
        if job.prompt_tokens + job.output_tokens > self.config.max_model_len:
            return _error(400, "prompt + max_tokens exceed max_model_len", "BadRequestError")
        try:
            flight = self.engine.submit(
                prompt_tokens=job.prompt_tokens, output_tokens=job.output_tokens
            )
        except ValueError as exc:
            return _error(400, str(exc), "BadRequestError")
        if job.stream:
            return await self._stream(request, job, flight)
        async for _ in self.engine.tokens(flight):
            pass
        return web.json_response(openai_protocol.full_response(job, created=int(time.time())))

    async def _stream(
        self,
        request: web.Request,
        job: openai_protocol.GenerationJob,
        flight: realtime.InFlight,
    ) -> web.StreamResponse:
        created = int(time.time())
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        # Token chunks differ only in position (role on the first, finish_reason on the
        # last): serialise the three shapes once, not once per token.
        last = job.output_tokens - 1
        first_frame, middle_frame, last_frame = (
            openai_protocol.sse_event(
                openai_protocol.stream_chunk(
                    job, created=created, index=i, finish_reason="length" if i == last else None
                )
            )
            for i in (0, min(1, last), last)
        )
        try:
            async for index in self.engine.tokens(flight):
                if index == last:
                    await response.write(last_frame)
                else:
                    await response.write(first_frame if index == 0 else middle_frame)
            if job.include_usage:
                usage = openai_protocol.usage_chunk(
                    job, created=created, completion_tokens=job.output_tokens
                )
                await response.write(openai_protocol.sse_event(usage))
            await response.write(openai_protocol.DONE_EVENT)
            await response.write_eof()
        except ConnectionResetError:
            # The client left. vLLM would abort the request; the engine model has no abort,
            # so it runs to completion and only the stream stops.
            pass
        return response


def _error(status: int, message: str, kind: str) -> web.Response:
    return web.json_response(
        openai_protocol.error_body(message, kind=kind, code=status), status=status
    )
