"""The slice of the OpenAI API that vLLM serves and the simulator needs, parsed at the edge.

The simulator generates exactly ``max_tokens`` tokens (``finished_reason="length"``), so the
load generator controls output length the way benchmarks do with ``ignore_eos``.

Prompt length: the extension field ``prompt_token_count`` (an integer) sets it exactly, so
a trace's ``num_prefill_tokens`` reaches the engine without sending kilobytes of text;
without it the length is estimated from the text at ~4 characters per token (or is the
length of a token-id list).
"""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

CHARS_PER_TOKEN = 4
DEFAULT_MAX_TOKENS = 16  # OpenAI's and vLLM's default for /v1/completions
TOKEN_TEXT = " tok"
DONE_EVENT = b"data: [DONE]\n\n"

Kind = Literal["completion", "chat"]


class StreamOptions(BaseModel):
    include_usage: bool = False


class _Request(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    prompt_token_count: int | None = Field(default=None, ge=1)  # simulator extension


class CompletionRequest(_Request):
    prompt: str | list[str] | list[int] = ""


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(_Request):
    messages: list[ChatMessage] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class GenerationJob:
    """What the engine needs from one API call."""

    kind: Kind
    request_id: str
    model: str
    prompt_tokens: int
    output_tokens: int
    stream: bool
    include_usage: bool


def estimate_tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / CHARS_PER_TOKEN))


def _completion_prompt_tokens(req: CompletionRequest) -> int:
    if isinstance(req.prompt, str):
        return estimate_tokens(req.prompt)
    if all(isinstance(p, int) for p in req.prompt):
        return max(1, len(req.prompt))
    return estimate_tokens("".join(str(p) for p in req.prompt))


def _chat_prompt_tokens(req: ChatRequest) -> int:
    text = ""
    for m in req.messages:
        if isinstance(m.content, str):
            text += m.content
        elif m.content:
            text += "".join(str(part.get("text", "")) for part in m.content)
    return estimate_tokens(text)


def parse_job(
    kind: Kind, body: Any, *, served_model: str, default_max_tokens: int
) -> GenerationJob:
    """Validate a request body; raises ``pydantic.ValidationError`` on a bad one."""
    req: _Request
    if kind == "completion":
        req = CompletionRequest.model_validate(body)
        estimated = _completion_prompt_tokens(req)
    else:
        req = ChatRequest.model_validate(body)
        estimated = _chat_prompt_tokens(req)
    prefix = "cmpl" if kind == "completion" else "chatcmpl"
    return GenerationJob(
        kind=kind,
        request_id=f"{prefix}-{uuid.uuid4().hex}",
        model=req.model or served_model,
        prompt_tokens=req.prompt_token_count or estimated,
        output_tokens=req.max_completion_tokens or req.max_tokens or default_max_tokens,
        stream=req.stream,
        include_usage=bool(req.stream_options and req.stream_options.include_usage),
    )


def usage(job: GenerationJob, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": job.prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": job.prompt_tokens + completion_tokens,
    }


def stream_chunk(
    job: GenerationJob, *, created: int, index: int, finish_reason: str | None
) -> dict[str, Any]:
    """One streamed token: ``index`` 0 is the first token of the response."""
    if job.kind == "completion":
        choice: dict[str, Any] = {"index": 0, "text": TOKEN_TEXT, "logprobs": None}
        obj = "text_completion"
    else:
        delta: dict[str, Any] = {"content": TOKEN_TEXT}
        if index == 0:
            delta["role"] = "assistant"
        choice = {"index": 0, "delta": delta, "logprobs": None}
        obj = "chat.completion.chunk"
    choice["finish_reason"] = finish_reason
    return {"id": job.request_id, "object": obj, "created": created, "model": job.model,
            "choices": [choice]}  # fmt: skip


def usage_chunk(job: GenerationJob, *, created: int, completion_tokens: int) -> dict[str, Any]:
    obj = "text_completion" if job.kind == "completion" else "chat.completion.chunk"
    return {"id": job.request_id, "object": obj, "created": created, "model": job.model,
            "choices": [], "usage": usage(job, completion_tokens)}  # fmt: skip


def full_response(job: GenerationJob, *, created: int) -> dict[str, Any]:
    """The non-streaming body, after all ``output_tokens`` were generated."""
    text = TOKEN_TEXT * job.output_tokens
    if job.kind == "completion":
        choice: dict[str, Any] = {"index": 0, "text": text, "logprobs": None}
        obj = "text_completion"
    else:
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": None}
        obj = "chat.completion"
    choice["finish_reason"] = "length"
    return {"id": job.request_id, "object": obj, "created": created, "model": job.model,
            "choices": [choice], "usage": usage(job, job.output_tokens)}  # fmt: skip


def sse_event(payload: dict[str, Any]) -> bytes:
    """One Server-Sent Event carrying a JSON object, as vLLM frames it."""
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def models_response(served_model: str, *, created: int, max_model_len: int) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {
                "id": served_model,
                "object": "model",
                "created": created,
                "owned_by": "vllm",
                "root": served_model,
                "parent": None,
                "max_model_len": max_model_len,
            }
        ],
    }


def error_body(message: str, *, kind: str, code: int) -> dict[str, Any]:
    return {"object": "error", "message": message, "type": kind, "param": None, "code": code}
