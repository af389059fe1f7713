"""OpenAI request parsing and SSE framing of the simulated server."""

from __future__ import annotations

import json

import pydantic
import pytest
from tierscale_testbed.simvllm import openai_protocol as proto


def _job(kind: proto.Kind, body: dict[str, object]) -> proto.GenerationJob:
    return proto.parse_job(kind, body, served_model="served", default_max_tokens=16)


def test_prompt_token_count_extension_sets_prompt_length_exactly() -> None:
    job = _job("completion", {"prompt": "x", "max_tokens": 7, "prompt_token_count": 1234})
    assert (job.prompt_tokens, job.output_tokens, job.model) == (1234, 7, "served")


def test_prompt_length_is_estimated_from_text_or_token_ids() -> None:
    assert _job("completion", {"prompt": "a" * 41}).prompt_tokens == 11
    assert _job("completion", {"prompt": [1, 2, 3]}).prompt_tokens == 3
    chat = _job("chat", {"messages": [{"role": "user", "content": "b" * 8}]})
    assert chat.prompt_tokens == 2
    assert chat.output_tokens == 16


def test_bad_requests_are_rejected() -> None:
    with pytest.raises(pydantic.ValidationError):
        _job("chat", {"messages": []})
    with pytest.raises(pydantic.ValidationError):
        _job("completion", {"prompt": "x", "max_tokens": 0})


def test_sse_event_is_one_data_line_and_a_blank_line() -> None:
    job = _job("completion", {"prompt": "x", "stream": True})
    frame = proto.sse_event(proto.stream_chunk(job, created=1, index=0, finish_reason=None))
    assert frame.startswith(b"data: ")
    assert frame.endswith(b"\n\n")
    assert frame.count(b"\n") == 2
    payload = json.loads(frame[len(b"data: ") :])
    assert payload["object"] == "text_completion"
    assert payload["choices"][0]["text"] == proto.TOKEN_TEXT
    assert proto.DONE_EVENT == b"data: [DONE]\n\n"


def test_chat_stream_announces_the_role_once_and_finishes_with_length() -> None:
    job = _job("chat", {"messages": [{"role": "user", "content": "hi"}], "stream": True})
    first = proto.stream_chunk(job, created=1, index=0, finish_reason=None)
    last = proto.stream_chunk(job, created=1, index=3, finish_reason="length")
    assert first["choices"][0]["delta"]["role"] == "assistant"
    assert "role" not in last["choices"][0]["delta"]
    assert last["choices"][0]["finish_reason"] == "length"
    assert first["object"] == "chat.completion.chunk"


def test_full_response_reports_usage() -> None:
    job = _job("completion", {"prompt": "x", "max_tokens": 3, "prompt_token_count": 10})
    body = proto.full_response(job, created=1)
    assert body["usage"] == {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}
    assert body["choices"][0]["text"] == proto.TOKEN_TEXT * 3
