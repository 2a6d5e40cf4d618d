"""A real MCP client for the e2e tests: the official Python SDK (`mcp`, installed by .ci/run).

Usage: client.py URL KEY STEPS_JSON

Connects over Streamable HTTP with `Authorization: Bearer KEY`, initializes, lists the tools and
resources, then runs each step (`{"tool": NAME, "arguments": {...}}` or `{"resource": URI}`) and
prints one JSON object: `{"server", "tools", "resources", "results"}`, where each tool result is
`{"is_error", "content": [parsed JSON text...]}`. A failure to connect prints `{"error": TEXT}` and
exits 2.
"""

import asyncio
import json
import sys

from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


def field(obj, *names):
    for name in names:
        if hasattr(obj, name):
            return getattr(obj, name)
    raise AttributeError(names[0])


async def run(url, key, steps):
    out = {"results": []}
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {key}"})
    async with http:
        async with streamable_http_client(url, http_client=http) as streams:
            read, write = streams[0], streams[1]
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                out["server"] = field(init, "server_info", "serverInfo").name
                tools = await session.list_tools()
                out["tools"] = [
                    {"name": t.name, "input_schema": field(t, "input_schema", "inputSchema")} for t in tools.tools
                ]
                resources = await session.list_resources()
                out["resources"] = [str(r.uri) for r in resources.resources]
                for step in steps:
                    if "resource" in step:
                        read_result = await session.read_resource(step["resource"])
                        out["results"].append({"text": read_result.contents[0].text})
                        continue
                    result = await session.call_tool(step["tool"], step.get("arguments", {}))
                    texts = [c.text for c in result.content if getattr(c, "type", "") == "text"]
                    out["results"].append(
                        {"is_error": bool(field(result, "is_error", "isError")), "content": [json.loads(t) for t in texts]}
                    )
    return out


def main():
    url, key, steps = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    try:
        out = asyncio.run(run(url, key, steps))
    except BaseException as error:  # noqa: BLE001 - the test reads what went wrong
        while isinstance(error, BaseExceptionGroup) and error.exceptions:
            error = error.exceptions[0]
        print(json.dumps({"error": f"{type(error).__name__}: {error}"}))
        sys.exit(2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
