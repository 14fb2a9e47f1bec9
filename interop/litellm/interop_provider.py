"""A LiteLLM custom provider for Compactor's interop suite: deterministic text and tool calls.

LiteLLM turns the chunks yielded by `astreaming` into Responses API events (SSE), so the client
under test reads LiteLLM's own encoding of text deltas, function calls and usage.

Behaviour, from the chat messages LiteLLM builds out of the Responses input:
- the last message is a tool result: answer with text that quotes the result;
- the last user message contains "use the tool" and tools are offered: call the first tool
  (`shell` with `{"cmd": "ls"}` when it is offered);
- otherwise: answer with text that names the user's last message.
"""

import json
import zlib

import litellm
from litellm import CustomLLM
from litellm.types.utils import GenericStreamingChunk, ModelResponse


def _text_of(message):
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "".join(parts)
    return ""


def _tool_names(optional_params):
    names = []
    for tool in optional_params.get("tools") or []:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and function.get("name"):
            names.append(function["name"])
        elif isinstance(tool, dict) and tool.get("name"):
            names.append(tool["name"])
    return names


def _plan(messages, optional_params):
    """What to answer: ("text", str) or ("tool", name, arguments)."""
    last = messages[-1] if messages else {}
    if last.get("role") == "tool":
        return ("text", "The tool returned: " + _text_of(last).strip())
    user = ""
    for message in reversed(messages):
        if message.get("role") == "user":
            user = _text_of(message)
            break
    names = _tool_names(optional_params)
    if "use the tool" in user and names:
        name = "shell" if "shell" in names else names[0]
        return ("tool", name, json.dumps({"cmd": "ls"}))
    return ("text", "LiteLLM custom provider heard: " + user.strip())


def _usage(messages, output_text):
    prompt = sum(len(_text_of(m)) for m in messages) // 4 + 1
    completion = len(output_text) // 4 + 1
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _chunk(text="", tool_use=None, finished=False, finish_reason="", usage=None):
    return GenericStreamingChunk(
        text=text,
        tool_use=tool_use,
        is_finished=finished,
        finish_reason=finish_reason,
        usage=usage,
        index=0,
    )


def _chunks(messages, optional_params):
    plan = _plan(messages, optional_params)
    if plan[0] == "tool":
        _, name, arguments = plan
        call_id = "call_%08x" % zlib.crc32(("%s:%d" % (name, len(messages))).encode())
        tool_use = {
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": arguments},
            "index": 0,
        }
        return [
            _chunk(tool_use=tool_use),
            _chunk(finished=True, finish_reason="tool_calls", usage=_usage(messages, arguments)),
        ]
    text = plan[1]
    words = text.split(" ")
    pieces = [word + (" " if i < len(words) - 1 else "") for i, word in enumerate(words)]
    out = [_chunk(text=piece) for piece in pieces]
    out.append(_chunk(finished=True, finish_reason="stop", usage=_usage(messages, text)))
    return out


class InteropProvider(CustomLLM):
    """Deterministic answers; streaming only matters to the interop suite."""

    def completion(self, *args, **kwargs) -> ModelResponse:
        return self._complete(kwargs)

    async def acompletion(self, *args, **kwargs) -> ModelResponse:
        return self._complete(kwargs)

    def _complete(self, kwargs):
        messages = kwargs.get("messages") or []
        plan = _plan(messages, kwargs.get("optional_params") or {})
        text = plan[1] if plan[0] == "text" else ""
        return litellm.completion(
            model="gpt-4o-mini", messages=messages, mock_response=text or "ok"
        )

    def streaming(self, *args, **kwargs):
        messages = kwargs.get("messages") or []
        yield from _chunks(messages, kwargs.get("optional_params") or {})

    async def astreaming(self, *args, **kwargs):
        messages = kwargs.get("messages") or []
        for chunk in _chunks(messages, kwargs.get("optional_params") or {}):
            yield chunk


handler = InteropProvider()
