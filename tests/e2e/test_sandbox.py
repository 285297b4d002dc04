"""The sandbox Discord server, proven with a real discord.py client and raw gateway/REST calls."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import signal
import sys
import zlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import discord
import pytest
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

from mpg_tui.discord_adapter.endpoint import gateway_url_for, point_discord_py_at, restore_discord_endpoints
from mpg_tui.sandbox.discord import (
    ActionLog,
    SandboxClient,
    SandboxClientError,
    SandboxFile,
    SandboxServer,
    SandboxSpec,
    SpecError,
)
from mpg_tui.sandbox.discord.testing import RecordingClient, bot_intents, run_client

pytestmark = pytest.mark.e2e

StartBot = Callable[..., Awaitable[RecordingClient]]

ZLIB_SUFFIX = b"\x00\x00\xff\xff"


def ids(sandbox: SandboxServer) -> tuple[int, str, str]:
    """(general channel id as int, alice's id, bob's id)."""
    spec = sandbox.spec
    return int(spec.channel("general").id), spec.user("alice").id, spec.user("bob").id


async def user_message(sandbox: SandboxServer, bot: RecordingClient, content: str) -> discord.Message:
    general, alice, _ = ids(sandbox)
    posted = await sandbox.post_as_user(str(general), alice, content)
    return await bot.next_message(lambda m: m.id == int(posted["id"]))


# -- start-up ---------------------------------------------------------------------------


async def test_on_ready_shows_guild_channels_roles_and_members(sandbox: SandboxServer, bot: RecordingClient) -> None:
    (guild,) = bot.guilds
    spec = sandbox.spec
    assert guild.id == int(spec.guild.id)
    assert [c.name for c in guild.text_channels] == ["general", "ops"]
    assert guild.default_role.id == guild.id
    assert {r.name for r in guild.roles} == {"@everyone", "developer"}
    assert {m.name for m in guild.members} == {"alice", "bob", "mpg-bot"}
    assert guild.chunked
    alice = guild.get_member(int(spec.user("alice").id))
    assert alice is not None and [r.name for r in alice.roles] == ["@everyone", "developer"]
    assert bot.user is not None and bot.user.id == int(spec.bot.id) and bot.user.bot
    perms = guild.text_channels[0].permissions_for(guild.me)
    assert perms.send_messages and perms.add_reactions and perms.create_public_threads


async def test_wrong_token_raises_login_failure(sandbox: SandboxServer) -> None:
    client = RecordingClient(bot_intents())
    with pytest.raises(discord.LoginFailure):
        await asyncio.wait_for(run_client(client, "not-the-token"), 5)


@pytest.mark.parametrize("spec", [SandboxSpec.default(channels=["general"], privileged_intents=["message_content"])])
async def test_privileged_intent_not_enabled_raises_privileged_intents_required(
    sandbox: SandboxServer, start_bot: StartBot
) -> None:
    client = RecordingClient(bot_intents(members=True))
    with pytest.raises(discord.PrivilegedIntentsRequired):
        await asyncio.wait_for(run_client(client, sandbox.token), 5)
    # Without the refused intent the same bot connects.
    assert (await start_bot(bot_intents(members=False))).guilds


async def test_without_members_intent_only_the_bot_member_is_sent(sandbox: SandboxServer, start_bot: StartBot) -> None:
    bot = await start_bot(bot_intents(members=False))
    (guild,) = bot.guilds
    assert [m.name for m in guild.members] == ["mpg-bot"]
    # Messages still carry the author's member object, so roles are known anyway.
    received = await user_message(sandbox, bot, "hi")
    assert isinstance(received.author, discord.Member)
    assert [r.name for r in received.author.roles] == ["@everyone", "developer"]


async def test_without_message_content_intent_content_is_blank_unless_the_bot_is_mentioned(
    sandbox: SandboxServer, start_bot: StartBot
) -> None:
    bot = await start_bot(bot_intents(message_content=False))
    assert (await user_message(sandbox, bot, "secret")).content == ""
    mention = f"<@{sandbox.spec.bot.id}> do it"
    received = await user_message(sandbox, bot, mention)
    assert received.content == mention
    assert bot.user in received.mentions


# -- messages in and out ----------------------------------------------------------------


async def test_user_message_arrives_in_on_message_with_content_and_roles(
    sandbox: SandboxServer, bot: RecordingClient
) -> None:
    general, alice, _ = ids(sandbox)
    posted = await sandbox.post_as_user(str(general), alice, "hello gateway")
    received = await bot.next_message(lambda m: m.id == int(posted["id"]))
    assert received.content == "hello gateway"
    assert received.channel.id == general
    assert received.author.name == "alice"
    assert isinstance(received.author, discord.Member)
    assert "developer" in [r.name for r in received.author.roles]
    assert posted["author"]["id"] == alice and posted["content"] == "hello gateway"


async def test_react_thread_send_edit_delete_are_logged_in_order(sandbox: SandboxServer, bot: RecordingClient) -> None:
    general, _, _ = ids(sandbox)
    received = await user_message(sandbox, bot, "please help")
    await received.add_reaction("👀")
    thread = await received.create_thread(name="please help", auto_archive_duration=1440)
    created = await bot.next_event("thread_create")
    sent = await thread.send("working on it")
    await sent.edit(content="done")
    await sent.delete()

    assert [a.kind for a in sandbox.actions] == [
        "reaction",
        "thread_created",
        "message_sent",
        "message_edited",
        "message_deleted",
    ]
    reaction, opened, message, edited, deleted = sandbox.actions
    assert reaction.payload["emoji"] == "👀" and reaction.message_id == str(received.id)
    # Like Discord, a thread started on a message takes the message's ID.
    assert thread.id == received.id == created.id
    assert opened.payload["type"] == 11 and opened.payload["parent_id"] == str(general)
    assert opened.payload["thread_metadata"]["auto_archive_duration"] == 1440
    assert isinstance(bot.get_channel(thread.id), discord.Thread)
    assert message.channel_id == str(thread.id) and message.content == "working on it"
    assert edited.content == "done" and edited.payload["edited_timestamp"] is not None
    assert deleted.message_id == str(sent.id)
    assert sandbox.messages(str(thread.id)) == []
    assert [t["name"] for t in sandbox.threads(str(general))] == ["please help"]
    assert sandbox.messages(str(general))[0]["reactions"][0]["me"] is True


async def test_bot_messages_come_back_through_the_gateway(sandbox: SandboxServer, bot: RecordingClient) -> None:
    channel = bot.get_channel(ids(sandbox)[0])
    assert isinstance(channel, discord.TextChannel)
    sent = await channel.send("echo")
    echoed = await bot.next_message(lambda m: m.id == sent.id)
    assert echoed.author == bot.user and echoed.content == "echo"


async def test_typing_and_reply_are_logged_with_discord_shapes(sandbox: SandboxServer, bot: RecordingClient) -> None:
    received = await user_message(sandbox, bot, "question")
    async with received.channel.typing():
        reply = await received.reply("answer")
    typing, sent = sandbox.actions
    assert (typing.kind, typing.channel_id) == ("typing", str(received.channel.id))
    assert sent.payload["type"] == 19
    assert sent.payload["message_reference"]["message_id"] == str(received.id)
    assert sent.payload["referenced_message"]["content"] == "question"
    assert reply.reference is not None and reply.reference.message_id == received.id


async def test_history_is_newest_first_and_pages_by_before_and_after(
    sandbox: SandboxServer, bot: RecordingClient
) -> None:
    general, alice, _ = ids(sandbox)
    posted = [await sandbox.post_as_user(str(general), alice, f"m{i}") for i in range(5)]
    channel = bot.get_channel(general)
    assert isinstance(channel, discord.TextChannel)
    assert [m.content async for m in channel.history(limit=3)] == ["m4", "m3", "m2"]
    before = discord.Object(int(posted[2]["id"]))
    assert [m.content async for m in channel.history(limit=10, before=before)] == ["m1", "m0"]
    after = discord.Object(int(posted[0]["id"]))
    assert [m.content async for m in channel.history(limit=2, after=after)] == ["m1", "m2"]
    fetched = await channel.fetch_message(int(posted[3]["id"]))
    assert fetched.content == "m3" and fetched.author.name == "alice"


async def test_embed_and_file_are_stored_and_served(sandbox: SandboxServer, bot: RecordingClient) -> None:
    channel = bot.get_channel(ids(sandbox)[0])
    assert isinstance(channel, discord.TextChannel)
    embed = discord.Embed(description="the answer", colour=0x3498DB).set_author(name="engineer")
    sent = await channel.send(embed=embed, file=discord.File(io.BytesIO(b"line one\n"), filename="notes.txt"))

    action = await sandbox.wait_for(lambda a: a.kind == "message_sent")
    (stored_embed,) = action.embeds
    assert stored_embed["description"] == "the answer" and stored_embed["color"] == 0x3498DB
    assert stored_embed["author"]["name"] == "engineer"
    (attachment,) = action.payload["attachments"]
    assert attachment["filename"] == "notes.txt" and attachment["size"] == 9
    assert attachment["content_type"].startswith("text/plain")
    assert attachment["url"].startswith(sandbox.base_url + "/_sandbox/attachments/")
    assert await sent.attachments[0].read() == b"line one\n"
    assert sent.embeds[0].description == "the answer"


async def test_user_attachment_is_readable_by_the_bot(sandbox: SandboxServer, bot: RecordingClient) -> None:
    general, alice, _ = ids(sandbox)
    data = b"\x89PNG\r\n\x1a\n fake image"
    posted = await sandbox.post_as_user(
        str(general), alice, "see picture", attachments=[SandboxFile("shot 1.png", data)]
    )
    received = await bot.next_message(lambda m: m.id == int(posted["id"]))
    (attachment,) = received.attachments
    assert attachment.filename == "shot_1.png"
    assert attachment.content_type == "image/png" and attachment.size == len(data)
    assert await attachment.read() == data


async def test_over_long_content_is_refused_like_discord(sandbox: SandboxServer, bot: RecordingClient) -> None:
    channel = bot.get_channel(ids(sandbox)[0])
    assert isinstance(channel, discord.TextChannel)
    with pytest.raises(discord.HTTPException) as caught:
        await channel.send("x" * 2001)
    assert caught.value.status == 400 and caught.value.code == 50035
    assert "content" in caught.value.text
    await channel.send("x" * 2000)
    assert [a.kind for a in sandbox.actions] == ["message_sent"]


async def test_bot_archiving_a_thread_and_server_archiving_dispatch_thread_update(
    sandbox: SandboxServer, bot: RecordingClient
) -> None:
    received = await user_message(sandbox, bot, "topic")
    thread = await received.create_thread(name="topic")
    await bot.next_event("thread_create")
    await thread.edit(archived=True)
    action = await sandbox.wait_for(lambda a: a.kind == "channel_updated")
    assert action.channel_id == str(thread.id) and action.payload["thread_metadata"]["archived"] is True
    assert (await bot.next_event("thread_update")).archived

    # A user posting in the archived thread unarchives it, as on Discord.
    await sandbox.post_as_user(str(thread.id), sandbox.spec.user("bob").id, "still there?")
    assert sandbox.channel(str(thread.id))["thread_metadata"]["archived"] is False
    await bot.next_message(lambda m: m.content == "still there?")


# -- connection trouble -----------------------------------------------------------------


async def test_dropped_connection_resumes_and_delivers_what_was_posted_meanwhile(
    sandbox: SandboxServer, bot: RecordingClient
) -> None:
    general, alice, _ = ids(sandbox)
    assert sandbox.drop_connections() == 1
    assert sandbox.connected == 0
    posted = await sandbox.post_as_user(str(general), alice, "sent while you were away")
    received = await bot.next_message(lambda m: m.id == int(posted["id"]))
    await asyncio.wait_for(bot.resumed.wait(), 5)
    assert received.content == "sent while you were away"
    assert bot.ready_count == 1  # resumed, not re-identified
    assert sandbox.connected == 1


async def test_reconnect_opcode_leads_to_resume_without_losing_messages(
    sandbox: SandboxServer, bot: RecordingClient
) -> None:
    general, _, bob = ids(sandbox)
    assert sandbox.send_reconnect() == 1
    posted = await sandbox.post_as_user(str(general), bob, "during reconnect")
    await asyncio.wait_for(bot.resumed.wait(), 5)
    received = await bot.next_message(lambda m: m.id == int(posted["id"]))
    assert received.author.name == "bob" and bot.ready_count == 1


async def test_unresumable_session_gets_invalid_session_and_identifies_again(
    sandbox: SandboxServer, bot: RecordingClient
) -> None:
    bot.ready.clear()
    sandbox.drop_connections()
    sandbox.invalidate_sessions()
    await asyncio.wait_for(bot.ready.wait(), 5)
    assert bot.ready_count == 2 and not bot.resumed.is_set()
    assert (await user_message(sandbox, bot, "fresh start")).content == "fresh start"


# -- injected faults --------------------------------------------------------------------


async def test_429_without_via_header_raises_http_exception(sandbox: SandboxServer, bot: RecordingClient) -> None:
    channel = bot.get_channel(ids(sandbox)[0])
    assert isinstance(channel, discord.TextChannel)
    sandbox.inject("POST", "/channels/*/messages", 429, via=False)
    with pytest.raises(discord.HTTPException) as caught:
        await channel.send("limited")
    assert caught.value.status == 429
    assert sandbox.actions == [] and sandbox.messages(str(channel.id)) == []
    await channel.send("allowed again")
    assert [a.content for a in sandbox.actions] == ["allowed again"]


async def test_429_with_via_header_is_retried_after_retry_after(sandbox: SandboxServer, bot: RecordingClient) -> None:
    channel = bot.get_channel(ids(sandbox)[0])
    assert isinstance(channel, discord.TextChannel)
    sandbox.inject("POST", "/channels/*/messages", 429, retry_after=0.01)
    await channel.send("eventually")
    assert [a.content for a in sandbox.actions] == ["eventually"]
    assert sandbox.faults.pending == []


async def test_server_error_once_is_retried_and_succeeds(sandbox: SandboxServer, bot: RecordingClient) -> None:
    channel = bot.get_channel(ids(sandbox)[0])
    assert isinstance(channel, discord.TextChannel)
    sandbox.inject("POST", "/channels/*/messages", 500)
    await channel.send("second try")
    assert [m["content"] for m in sandbox.messages(str(channel.id))] == ["second try"]


async def test_refused_thread_creation_raises_forbidden(sandbox: SandboxServer, bot: RecordingClient) -> None:
    received = await user_message(sandbox, bot, "make a thread")
    sandbox.refuse_threads(str(received.channel.id))
    with pytest.raises(discord.Forbidden) as caught:
        await received.create_thread(name="nope")
    assert caught.value.code == 50013
    assert sandbox.threads(str(received.channel.id)) == []


async def test_unknown_route_is_logged_and_answered_with_discord_404(
    sandbox: SandboxServer, bot: RecordingClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="mpg_tui.sandbox.discord"), pytest.raises(discord.NotFound) as caught:
        await bot.http.request(Route("GET", "/guilds/{guild_id}/emojis", guild_id=bot.guilds[0].id))
    assert caught.value.code == 0
    assert sandbox.rest.unknown_routes == [f"GET /guilds/{bot.guilds[0].id}/emojis"]
    assert "unknown Discord route" in caplog.text


# -- raw REST and gateway ---------------------------------------------------------------


async def test_rest_answers_with_exact_json_content_type_and_401_on_bad_token(sandbox: SandboxServer) -> None:
    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bot {sandbox.token}"}
        async with http.get(f"{sandbox.api_base}/users/@me", headers=headers) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "application/json"
            assert (await resp.json())["id"] == sandbox.spec.bot.id
        async with http.get(f"{sandbox.api_base}/users/@me", headers={"Authorization": "Bot wrong"}) as resp:
            assert resp.status == 401
            assert await resp.json() == {"message": "401: Unauthorized", "code": 0}
        async with http.get(f"{sandbox.api_base}/gateway") as resp:
            assert (await resp.json())["url"] == sandbox.gateway_url


class RawGateway:
    """A bare websocket client speaking the gateway protocol, to check frames exactly."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, compressed: bool) -> None:
        self.ws = ws
        self._inflate = zlib.decompressobj() if compressed else None

    async def recv(self) -> dict[str, Any]:
        msg = await asyncio.wait_for(self.ws.receive(), 5)
        if msg.type is aiohttp.WSMsgType.BINARY:
            assert self._inflate is not None and msg.data.endswith(ZLIB_SUFFIX)
            data: dict[str, Any] = json.loads(self._inflate.decompress(msg.data))
            return data
        assert msg.type is aiohttp.WSMsgType.TEXT, msg
        text_data: dict[str, Any] = json.loads(msg.data)
        return text_data

    async def send(self, op: int, d: Any) -> None:
        await self.ws.send_str(json.dumps({"op": op, "d": d}))

    async def identify(self, token: str, intents: int) -> dict[str, Any]:
        await self.send(2, {"token": token, "intents": intents, "properties": {}})
        return await self.recv()

    async def close_code(self) -> int | None:
        msg = await asyncio.wait_for(self.ws.receive(), 5)
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), msg
        return self.ws.close_code


async def open_raw(http: aiohttp.ClientSession, sandbox: SandboxServer, *, compressed: bool) -> RawGateway:
    query = "?v=10&encoding=json" + ("&compress=zlib-stream" if compressed else "")
    ws = await http.ws_connect(sandbox.gateway_url + query, autoclose=False)
    return RawGateway(ws, compressed)


@pytest.mark.parametrize("compressed", [True, False], ids=["zlib-stream", "plain"])
async def test_gateway_handshake_ready_and_guild_create(sandbox: SandboxServer, compressed: bool) -> None:
    spec = sandbox.spec
    async with aiohttp.ClientSession() as http:
        gw = await open_raw(http, sandbox, compressed=compressed)
        hello = await gw.recv()
        assert hello["op"] == 10 and hello["d"]["heartbeat_interval"] > 0
        await gw.send(1, None)
        assert (await gw.recv())["op"] == 11
        ready = await gw.identify(sandbox.token, 1 | 2 | 512 | 32768)
        assert (ready["t"], ready["s"]) == ("READY", 1)
        assert ready["d"]["resume_gateway_url"] == sandbox.gateway_url
        assert ready["d"]["guilds"] == [{"id": spec.guild.id, "unavailable": True}]
        guild = await gw.recv()
        assert (guild["t"], guild["s"]) == ("GUILD_CREATE", 2)
        everyone = next(r for r in guild["d"]["roles"] if r["name"] == "@everyone")
        assert everyone["id"] == spec.guild.id and isinstance(everyone["permissions"], str)
        assert guild["d"]["member_count"] == len(guild["d"]["members"]) == 3
        await gw.ws.close()


async def test_gateway_sends_only_events_the_intents_ask_for(sandbox: SandboxServer) -> None:
    general, alice, _ = ids(sandbox)
    async with aiohttp.ClientSession() as http:
        gw = await open_raw(http, sandbox, compressed=False)
        await gw.recv()
        await gw.identify(sandbox.token, 1)  # GUILDS only: no message events
        await gw.recv()  # GUILD_CREATE
        await sandbox.post_as_user(str(general), alice, "not for you")
        headers = {"Authorization": f"Bot {sandbox.token}"}
        async with http.patch(f"{sandbox.api_base}/channels/{general}", json={"topic": "t"}, headers=headers) as r:
            assert r.status == 200
        nxt = await gw.recv()
        assert (nxt["t"], nxt["s"]) == ("CHANNEL_UPDATE", 3)
        await gw.ws.close()


async def test_gateway_resume_replays_missed_events_then_resumed(sandbox: SandboxServer) -> None:
    general, alice, _ = ids(sandbox)
    async with aiohttp.ClientSession() as http:
        gw = await open_raw(http, sandbox, compressed=False)
        await gw.recv()
        ready = await gw.identify(sandbox.token, 1 | 512 | 32768)
        await gw.recv()  # GUILD_CREATE, s=2
        await gw.ws.close(code=4000)
        await sandbox.post_as_user(str(general), alice, "missed")

        gw = await open_raw(http, sandbox, compressed=True)
        await gw.recv()
        await gw.send(6, {"token": sandbox.token, "session_id": ready["d"]["session_id"], "seq": 2})
        replayed = await gw.recv()
        assert (replayed["t"], replayed["s"], replayed["d"]["content"]) == ("MESSAGE_CREATE", 3, "missed")
        assert (await gw.recv())["t"] == "RESUMED"
        await gw.ws.close(code=1000)  # ends the session for good, like Discord

        gw = await open_raw(http, sandbox, compressed=False)
        await gw.recv()
        await gw.send(6, {"token": sandbox.token, "session_id": ready["d"]["session_id"], "seq": 3})
        assert await gw.recv() == {"op": 9, "d": False, "s": None, "t": None}
        await gw.ws.close()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"op": 2, "d": {"token": "wrong", "intents": 1, "properties": {}}}, 4004),
        ({"op": 42, "d": None}, 4001),
        ("{not json", 4002),
        ({"op": 8, "d": {"guild_id": "1"}}, 4003),
    ],
    ids=["bad-token", "unknown-op", "bad-json", "not-identified"],
)
async def test_gateway_protocol_errors_close_with_discord_codes(sandbox: SandboxServer, frame: Any, code: int) -> None:
    async with aiohttp.ClientSession() as http:
        gw = await open_raw(http, sandbox, compressed=False)
        await gw.recv()
        await gw.ws.send_str(frame if isinstance(frame, str) else json.dumps(frame))
        assert await gw.close_code() == code
        await gw.ws.close()


# -- control API and standalone process -------------------------------------------------


async def test_control_api_drives_users_actions_faults_and_drops(sandbox: SandboxServer, bot: RecordingClient) -> None:
    general, _, _ = ids(sandbox)
    async with SandboxClient(sandbox.base_url) as control:
        info = await control.info()
        assert info["channels"]["general"] == str(general) and info["connected"] == 1

        posted = await control.post_as_user(
            "general", "alice", "over http", attachments=[SandboxFile("a.json", b"{}", "application/json")]
        )
        received = await bot.next_message(lambda m: m.id == int(posted["id"]))
        assert received.content == "over http" and received.attachments[0].content_type == "application/json"

        waiter = asyncio.create_task(control.wait_for(lambda a: a.kind == "message_sent", after=sandbox.last_seq))
        await received.channel.send("pong")
        assert (await waiter).content == "pong"
        assert [m["content"] for m in await control.messages(str(general))] == ["over http", "pong"]

        fault = await control.inject("POST", "/channels/*/messages", 403)
        assert fault["status"] == 403
        with pytest.raises(discord.Forbidden):
            await received.channel.send("refused")

        bot.resumed.clear()
        assert await control.drop_connections() == 1
        await asyncio.wait_for(bot.resumed.wait(), 5)

        with pytest.raises(SandboxClientError) as caught:
            await control.post_as_user("general", "nobody", "x")
        assert caught.value.status == 400 and "nobody" in str(caught.value)


async def test_standalone_process_serves_spec_and_stops_on_sigterm(tmp_path: Path) -> None:
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(SandboxSpec.default(channels=["alpha"]).to_dict()))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mpg_tui.sandbox.discord",
        "--spec",
        str(spec_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        ready = json.loads(await asyncio.wait_for(proc.stdout.readline(), 20))
        assert ready["api_base"] == ready["base_url"] + "/api/v10"
        async with SandboxClient(ready["base_url"]) as control:
            await control.post_as_user("alpha", "bob", "hello process")
            messages = await control.messages(ready["channels"]["alpha"])
        assert [m["content"] for m in messages] == ["hello process"]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0


async def test_standalone_process_reports_a_bad_spec(tmp_path: Path) -> None:
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps({"guild": {"id": "1", "name": "g"}, "channels": [{"id": "x", "name": "c"}]}))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mpg_tui.sandbox.discord", "--spec", str(spec_path), stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 2
    assert "bot: missing" in err.decode()


# -- spec, action log, endpoint ---------------------------------------------------------


def test_default_spec_has_fixed_ids_and_round_trips_through_json() -> None:
    spec = SandboxSpec.default(channels=["general", "ops"])
    assert spec == SandboxSpec.default(channels=["general", "ops"])
    assert all(c.id.isdigit() for c in spec.channels)
    assert spec.user("alice").roles == (spec.role("developer").id,)
    assert SandboxSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["channels"][0].update(id="abc"), "channels[0].id: expected a snowflake"),
        (lambda d: d["users"][0].update(roles=["999"]), "users[0].roles: unknown role id 999"),
        (lambda d: d["channels"][1].update(id=d["channels"][0]["id"]), "already used by channels[0].id"),
        (lambda d: d.update(privileged_intents=["telepathy"]), "privileged_intents: unknown ['telepathy']"),
        (lambda d: d.pop("guild"), "guild: missing"),
    ],
    ids=["bad-snowflake", "unknown-role", "duplicate-id", "unknown-intent", "missing-guild"],
)
def test_bad_spec_names_the_field(mutate: Any, message: str) -> None:
    data = SandboxSpec.default(channels=["a", "b"]).to_dict()
    mutate(data)
    with pytest.raises(SpecError, match=message.replace("[", r"\[").replace("]", r"\]")):
        SandboxSpec.from_dict(data)


async def test_action_log_wait_sees_past_actions_and_respects_after() -> None:
    log = ActionLog()
    first = await log.record("typing", "1")
    assert await log.wait_for(lambda a: a.kind == "typing") == first
    waiter = asyncio.create_task(log.wait_for(lambda a: a.kind == "typing", after=first.seq))
    second = await log.record("typing", "2")
    assert await waiter == second
    with pytest.raises(TimeoutError, match="#2 typing"):
        await log.wait_for(lambda a: a.kind == "reaction", timeout=0.01)


def test_endpoint_override_points_at_server_root_and_restores() -> None:
    original = (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
    assert gateway_url_for("http://127.0.0.1:8080/api/v10") == "ws://127.0.0.1:8080/"
    assert gateway_url_for("https://example.test/sandbox/api/v10/") == "wss://example.test/sandbox/"
    with pytest.raises(ValueError, match="ending in /api/v"):
        gateway_url_for("http://127.0.0.1:8080/")
    point_discord_py_at("http://127.0.0.1:9/api/v10")
    point_discord_py_at("http://127.0.0.1:10/api/v10")
    assert Route.BASE == "http://127.0.0.1:10/api/v10"
    assert yarl.URL("ws://127.0.0.1:10/") == DiscordWebSocket.DEFAULT_GATEWAY
    restore_discord_endpoints()
    assert original == (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
