"""A Microsoft agentserver (azure-ai-agentserver-responses) app for Compactor's interop suite.

Run as `python handler.py PORT`; it serves `POST /responses` on 127.0.0.1:PORT, and the
framework validates every request body against the Responses schema before the handler runs.

The handler answers a tool output (the last input item) with text naming its call, and
otherwise from the text of the last user message:
- "use the tool": a `shell` function call with `{"cmd": "ls"}`;
- "compact": a `compaction` output item;
- anything else: an assistant message that echoes the text.
Every response completes with a usage object.
"""

import asyncio
import sys

from azure.ai.agentserver.responses import (
    CreateResponse,
    ResponseContext,
    ResponseEventStream,
    ResponsesAgentServerHost,
)

app = ResponsesAgentServerHost()


def _last_user_text(request):
    items = request.get("input")
    if isinstance(items, str):
        return items
    for item in reversed(items or []):
        if item.get("type", "message") != "message" or item.get("role") != "user":
            continue
        content = item.get("content")
        if isinstance(content, str):
            return content
        return "".join(part.get("text", "") for part in content or [] if isinstance(part, dict))
    return ""


def _last_item_type(request):
    items = request.get("input")
    if isinstance(items, list) and items:
        return items[-1].get("type", "message")
    return "message"


def _usage(request, output_tokens):
    input_tokens = len(str(request.get("input"))) // 4 + 1
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    }


@app.response_handler
async def handler(request: CreateResponse, context: ResponseContext, cancellation_signal: asyncio.Event):
    text = _last_user_text(request)
    stream = ResponseEventStream(response_id=context.response_id, request=request)
    yield stream.emit_created()
    yield stream.emit_in_progress()
    if _last_item_type(request) == "function_call_output":
        reply = "agentserver read the output of " + str(request["input"][-1].get("call_id"))
        for event in stream.output_item_message(reply):
            yield event
        output_tokens = len(reply) // 4 + 1
    elif "use the tool" in text:
        for event in stream.output_item_function_call("shell", "call_agentserver_1", '{"cmd":"ls"}'):
            yield event
        output_tokens = 5
    elif "compact" in text:
        for event in stream.output_item_compaction("agentserver-compacted:" + str(len(text))):
            yield event
        output_tokens = 3
    else:
        reply = "agentserver heard: " + text
        for event in stream.output_item_message(reply):
            yield event
        output_tokens = len(reply) // 4 + 1
    yield stream.emit_completed(usage=_usage(request, output_tokens))


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(sys.argv[1]))
