"""The least a Discord bot can do for claude: the yardstick of ``bench/latency.py``.

On every message from a person: spawn ``claude`` with the prompt on stdin (resuming the
channel's session), read its stream-json to the result, post the result. No journal, no
reaction, no typing, no sessions file, no queue, no events. ``bench/latency.py`` runs it
as its own process against the same sandbox and stand-in as the gateway, so the gateway's
own share is the difference between the two.

    python bench/bare_bot.py CONFIG_JSON    (written by bench/latency.py)
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import discord
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

with open(sys.argv[1], encoding="utf-8") as file:
    config = json.load(file)
Route.BASE = config["api_base"]
DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(config["gateway_url"])
sessions: dict[int, str] = {}

intents = discord.Intents.default()
intents.message_content = True
client = discord.Client(intents=intents)


@client.event
async def on_ready() -> None:
    print("bare bot ready", file=sys.stderr, flush=True)


@client.event
async def on_message(message: discord.Message) -> None:
    if message.author.bot:
        return
    argv = list(config["argv"])
    if message.channel.id in sessions:
        argv += ["--resume", sessions[message.channel.id]]
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=config["cwd"],
        env=config["env"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    out, _ = await proc.communicate(message.content.encode())
    result = json.loads(out.decode().strip().splitlines()[-1])
    sessions[message.channel.id] = result.get("session_id") or sessions.get(message.channel.id, "")
    await message.channel.send(result.get("result") or "(no result)")


client.run(config["token"], log_handler=None)
