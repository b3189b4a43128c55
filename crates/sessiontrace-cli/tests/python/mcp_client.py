"""Drives sessiontrace's MCP server with the official Python `mcp` client, over stdio (`sessiontrace mcp`)
or streamable HTTP (`/mcp`): lists the tools, calls each one (and a few with bad arguments), and prints
one JSON line {"tools": [...], "calls": {name: {"is_error", "text"}}} for the Rust test to check."""

import argparse
import asyncio
import json

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client


def calls(args):
    return {
        "list_sessions": ("list_sessions", {"query": "checkout"}),
        "get_session": ("get_session", {"session": args.session}),
        "get_session_steps": ("get_session", {"session": args.session, "sections": ["steps"]}),
        "get_session_json": ("get_session", {"session": args.session, "format": "json"}),
        "get_trace": ("get_trace", {"trace_id": args.trace}),
        "get_span": ("get_span", {"trace_id": args.trace, "span_id": args.span}),
        "search_logs": ("search_logs", {"session": args.session, "min_severity": "warn"}),
        "get_user_actions": ("get_user_actions", {"session": args.session}),
        "find_sessions_by_trace": ("find_sessions_by_trace", {"trace_id": args.trace}),
        "get_session_big": ("get_session", {"session": args.big_session}),
        "get_trace_big": ("get_trace", {"trace_id": args.big_trace}),
        "get_session_unknown": ("get_session", {"session": "0badc0de"}),
        "get_trace_bad_id": ("get_trace", {"trace_id": "xyz"}),
    }


async def drive(session, args):
    await session.initialize()
    listed = await session.list_tools()
    answers = {"tools": sorted(tool.name for tool in listed.tools), "calls": {}}
    for key, (name, arguments) in calls(args).items():
        result = await session.call_tool(name, arguments)
        text = "".join(getattr(block, "text", "") for block in result.content)
        answers["calls"][key] = {"is_error": bool(result.is_error), "text": text}
    # Paging: one session per page, following the cursor each answer gives until there is none.
    pages, cursor = [], None
    while len(pages) < 5:
        arguments = {"limit": 1, "format": "json"} | ({"cursor": cursor} if cursor else {})
        result = await session.call_tool("list_sessions", arguments)
        page = json.loads("".join(getattr(block, "text", "") for block in result.content))
        pages.append([s["short_id"] for s in page["sessions"]])
        cursor = page.get("next_cursor")
        if not cursor:
            break
    answers["pages"] = pages
    return answers


async def other_project(server):
    """list_sessions through `/mcp?project=elsewhere`: the URL's project, not `default`."""
    async with streamable_http_client(server + "/mcp?project=elsewhere") as streams:
        async with ClientSession(streams[0], streams[1]) as session:
            await session.initialize()
            result = await session.call_tool("list_sessions", {"format": "json"})
            return json.loads("".join(getattr(block, "text", "") for block in result.content))


async def main():
    parser = argparse.ArgumentParser()
    for flag in ["--transport", "--server", "--binary", "--session", "--trace", "--span", "--big-session", "--big-trace"]:
        parser.add_argument(flag, required=True)
    args = parser.parse_args()
    if args.transport == "stdio":
        params = StdioServerParameters(command=args.binary, args=["mcp", "--server", args.server])
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                answers = await drive(session, args)
    else:
        async with streamable_http_client(args.server + "/mcp") as streams:
            read, write = streams[0], streams[1]
            async with ClientSession(read, write) as session:
                answers = await drive(session, args)
        answers["other_project"] = await other_project(args.server)
    print(json.dumps(answers))


asyncio.run(main())
