"""An agent on the official Python MCP client: drives `haltstate mcp proxy --stdio` as a desktop client would.

Usage: python mcp_agent.py HALTSTATE_BINARY PROXY_ARG...
Prints one JSON line per step on stdout; between the held write and its retry it reads one line from stdin (the
test approves in between). Exits non-zero on any failure.
"""

import json
import sys

import anyio
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client


def show(step, result):
    structured = result.structured_content or {}
    text = "".join(block.text for block in result.content if getattr(block, "type", "") == "text")
    print(json.dumps({"step": step, "is_error": bool(result.is_error), "haltstate": structured.get("haltstate"),
                      "text": text}), flush=True)


async def main():
    binary, args = sys.argv[1], sys.argv[2:]
    write = json.loads(sys.stdin.readline())
    params = StdioServerParameters(command=binary, args=args)
    async with stdio_client(params) as (read, write_stream):
        async with ClientSession(read, write_stream) as session:
            await session.initialize()
            tools = await session.list_tools()
            print(json.dumps({"step": "tools", "names": sorted(t.name for t in tools.tools)}), flush=True)
            show("held", await session.call_tool("write_file", write))
            sys.stdin.readline()  # the test approves, then says so
            show("approved", await session.call_tool("write_file", write))
            show("moved", await session.call_tool("move_file", {"source": write["path"],
                                                               "destination": write["path"] + ".moved"}))


anyio.run(main)
