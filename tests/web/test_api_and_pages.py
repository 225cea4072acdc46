"""/api/v1 with scoped tokens, and the console pages that change things: each change goes
through the chat command's own service, shows in chat, and is written to the audit table."""

from __future__ import annotations

from typing import Any

from tests.web.conftest import Web


async def _token(web: Web, name: str, scopes: list[str], groups: str = "") -> str:
    page = await web.post("/tokens", {"name": name, "scopes": scopes, "groups": groups}, page="/tokens")
    assert page.status_code == 200, page.text
    return page.text.split('id="new-token">', 1)[1].split("<", 1)[0]


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _audit(web: Web) -> list[tuple[Any, ...]]:
    async with web.app.db.engine.connect() as conn:
        import sqlalchemy as sa

        return [
            tuple(r) for r in await conn.execute(sa.text("SELECT user_id, action, target, group_id FROM web_audit"))
        ]


async def test_api_reads_sends_and_schedules_within_its_scopes(web: Web) -> None:
    await web.bot.say("g1", "alice", "早上好")
    await web.flush()
    await web.login()
    reader = await _token(web, "报表", ["read"])
    g1_only = await _token(web, "g1 机器人", ["read", "send", "broadcast"], "g1")

    groups = (await web.client.get("/api/v1/groups", headers=_auth(reader))).json()
    g1 = next(g for g in groups if g["id"] == "g1")
    assert g1["active_today"] == 1 and g1["topic"] == "宝妈交流群"
    members = (await web.client.get("/api/v1/groups/g1/members", headers=_auth(reader))).json()
    assert isinstance(members, list)
    stats = (await web.client.get("/api/v1/groups/g1/stats?days=7", headers=_auth(reader))).json()
    assert stats["dau"][-1] == 1 and len(stats["days"]) == 7

    refused = await web.client.post("/api/v1/groups/g1/messages", headers=_auth(reader), json={"text": "hi"})
    assert refused.status_code == 403 and "send" in refused.json()["detail"]
    elsewhere = await web.client.post("/api/v1/groups/g2/messages", headers=_auth(g1_only), json={"text": "hi"})
    assert elsewhere.status_code == 403
    assert (await web.client.get("/api/v1/groups/g2/stats", headers=_auth(g1_only))).status_code == 403
    assert [g["id"] for g in (await web.client.get("/api/v1/groups", headers=_auth(g1_only))).json()] == ["g1"]

    sent = await web.client.post("/api/v1/groups/g1/messages", headers=_auth(g1_only), json={"text": "接口发来的通知"})
    assert sent.status_code == 202
    await web.bot.wait("5s")
    web.bot.assert_said("g1", contains="接口发来的通知")

    bad = await web.client.post(
        "/api/v1/broadcasts", headers=_auth(g1_only), json={"when": "昨天", "group": "g1", "content": "x"}
    )
    assert bad.status_code == 422
    made = await web.client.post(
        "/api/v1/broadcasts", headers=_auth(g1_only), json={"when": "每天20:00", "group": "g1", "content": "晚安"}
    )
    assert made.status_code == 201, made.text
    await web.bot.private("boss", "群发列表")
    assert "晚安" in (web.bot.assert_private("boss", contains="定时群发（").text or "")
    await web.bot.wait("13h")
    web.bot.assert_said("g1", contains="晚安")

    audit = await _audit(web)
    assert ("api:g1 机器人", "api.send", "g1", "g1") in audit
    assert any(row[:2] == ("api:g1 机器人", "api.broadcast") for row in audit)

    # Revoked in the console: refused at once.
    tokens = (await web.client.get("/tokens")).text
    token_id = tokens.split('action="/tokens/', 1)[1].split("/", 1)[0]
    await web.post(f"/tokens/{token_id}/revoke", page="/tokens")
    assert (await web.client.get("/api/v1/groups", headers=_auth(reader))).status_code == 401


async def test_openapi_docs_describe_the_api(web: Web) -> None:
    schema = (await web.client.get("/api/v1/openapi.json")).json()
    assert {"/api/v1/groups", "/api/v1/broadcasts", "/api/v1/groups/{group_id}/messages"} <= set(schema["paths"])
    assert all(not p.startswith(("/login", "/config")) for p in schema["paths"])
    assert (await web.client.get("/api/v1/docs")).status_code == 200


async def test_broadcast_pause_resume_delete_and_report_from_the_console(web: Web) -> None:
    await web.login()
    preview = await web.post(
        "/broadcasts/preview", {"when": "工作日 9点半", "group": "g1", "content": "x"}, "/broadcasts"
    )
    assert preview.text.count("<li>") == 5 and "2026-12-01 09:30 周二" in preview.text
    wrong = await web.post("/broadcasts/preview", {"when": "每1分钟", "group": "g1", "content": "x"}, "/broadcasts")
    assert 'class="error"' in wrong.text
    made = await web.post("/broadcasts", {"when": "每天09:00", "group": "g1", "content": "早安"}, "/broadcasts")
    assert made.status_code == 303
    listing = (await web.client.get("/broadcasts")).text
    assert "每天 09:00" in listing or "每天09:00" in listing
    name = listing.split('href="/broadcasts/', 1)[1].split('"', 1)[0]
    await web.post(f"/broadcasts/{name}/pause", page="/broadcasts")
    assert "已暂停" in (await web.client.get("/broadcasts")).text
    await web.bot.wait("2h")
    assert not web.bot.said("g1", contains="早安")
    await web.post(f"/broadcasts/{name}/resume", page="/broadcasts")
    await web.bot.wait("1d")
    web.bot.assert_said("g1", contains="早安")
    report = (await web.client.get(f"/broadcasts/{name}")).text
    assert "已发送 1" in report
    await web.post(f"/broadcasts/{name}/delete", page="/broadcasts")
    assert web.app.dispatcher.runtime.hosts["broadcast"].state.defs == {}
    actions = [row[1] for row in await _audit(web)]
    assert actions == ["login.link", "broadcast.create", "broadcast.pause", "broadcast.resume", "broadcast.delete"]


async def test_members_csv_and_the_audit_page(web: Web) -> None:
    for text in ("a", "b", "c"):
        await web.bot.say("g1", "alice", text)
    await web.bot.say("g1", "bob", "d")
    await web.flush()
    await web.login()
    csv = await web.client.get("/groups/g1/members.csv")
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.lstrip("\ufeff").splitlines()
    assert lines[0].startswith("member_id,name,messages_30d")
    assert lines[1].startswith("alice,Alice,3")
    audit = (await web.client.get("/audit")).text
    assert "login.link" in audit


async def test_password_login_with_an_argon2_hash(web: Web, monkeypatch: Any) -> None:
    from bot.web.auth import hash_password

    monkeypatch.setenv("QUNBOT_WEB_PASSWORD_HASH", hash_password("correct horse"))
    page = await web.client.get("/login")
    assert 'name="password"' in page.text
    wrong = await web.post("/login", {"password": "nope"}, page="/login")
    assert wrong.status_code == 401
    right = await web.post("/login", {"password": "correct horse"}, page="/login")
    assert right.status_code == 303
    assert (await web.client.get("/config")).status_code == 200


async def test_playground_says_what_would_act_without_sending(tmp_path: Any) -> None:
    import httpx

    from bot.web.server import create_app
    from tests.harness import chat
    from tests.web.conftest import WORLD, web_config

    extra = """  keyword_reply:
    rules:
      - {keywords: [群规], match: contains, replies: ["请看群公告"]}
"""
    async with chat(web_config(tmp_path, extra), WORLD) as bot:
        transport = httpx.ASGITransport(app=create_app(bot.sim.app))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            web = Web(bot, client)
            await web.login("alice")
            before = len(bot.actions)

            async def tried(text: str, new: bool = False, group: str = "g1") -> str:
                data = {"group": group, "member": "bob", "text": text}
                if new:
                    data["new_member"] = "true"
                response = await web.post("/try", data, page="/try")
                assert response.status_code == 200, response.text
                return response.text

            assert "关键词回复</b> — 规则 #1“群规”" in await tried("请问群规是什么")
            assert "【基础】命令“帮助”" in await tried("帮助")
            spam = await tried("加微信 vx123456 领取兼职日结 http://t.cn/abc", new=True)
            assert "自动踢广告</b> — 判为广告" in spam
            assert "没有功能会处理" in await tried("今天天气不错")
            assert "&lt;b&gt;" in await tried("<b>hi</b> 群规")  # typed HTML is shown, not run
            assert len(bot.actions) == before  # nothing was sent
            assert (await web.post("/try", {"group": "g2", "text": "x"}, page="/try")).status_code == 403


async def test_the_relay_page_shows_live_state_speakers_and_questions(tmp_path: Any) -> None:
    import httpx

    from bot.web.server import create_app
    from tests.harness import chat
    from tests.web.conftest import WORLD, web_config

    extra = """  relay:
    relays:
      - {name: lecture, source: g1, targets: [g2], speakers: [alice], always_on: false}
"""
    async with chat(web_config(tmp_path, extra), WORLD) as bot:
        transport = httpx.ASGITransport(app=create_app(bot.sim.app))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            web = Web(bot, client)
            await web.login()
            assert "未开播" in (await client.get("/relay")).text
            await bot.say("g1", "owner1", "开始直播")
            await bot.say("g1", "alice", "今天讲睡眠")
            await bot.say("g2", "bob", "提问：<b>几点</b>睡合适？")
            page = (await client.get("/relay")).text
            assert "直播中" in page and "alice" in page
            assert "同步消息 1 条" in page and "提问 1 个" in page
            assert "&lt;b&gt;几点&lt;/b&gt;睡合适？" in page


async def test_editing_a_broadcast_replaces_it(web: Web) -> None:
    await web.login("alice")  # a group admin of g1
    await web.post("/broadcasts", {"when": "每天09:00", "group": "g1", "content": "早安"}, "/broadcasts")
    state = web.app.dispatcher.runtime.hosts["broadcast"].state
    (old,) = state.defs
    form = (await web.client.get(f"/broadcasts?edit={old}")).text
    assert 'value="每天09:00"' in form and "早安</textarea>" in form and f'value="{old}"' in form
    done = await web.post(
        "/broadcasts", {"when": "每天10:00", "group": "g1", "content": "早安！", "replace": old}, "/broadcasts"
    )
    assert done.status_code == 303
    (new,) = state.defs
    assert new != old and state.defs[new].messages == ["早安！"]
    await web.bot.wait("3h")
    web.bot.assert_said("g1", contains="早安！", count=1)
    assert (await web.client.get("/broadcasts?edit=nope")).status_code == 404


async def test_every_page_and_the_api_on_each_database(tmp_path: Any, db_url: str) -> None:
    """SQLite and PostgreSQL: the overview's rollup queries, the reports, the audit and
    token tables, the one-time link's conditional update."""
    import httpx

    from bot.web.server import create_app
    from tests.harness import chat
    from tests.web.conftest import WORLD, web_config

    honey = "周末去山里采的野生蜂蜜，纯天然没兑水，家里老人孩子都爱喝，要的找我"
    async with chat(web_config(tmp_path), WORLD, db_url=db_url) as bot:
        transport = httpx.ASGITransport(app=create_app(bot.sim.app))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            web = Web(bot, client)
            await bot.say("g1", "alice", "早上好")
            await bot.say("g1", "spammer", honey)
            await bot.say("g1", "alice", "广告", quote={"from": "spammer", "text": honey})
            await web.flush()
            await web.login()
            overview = (await client.get("/")).text
            assert "踢广告 1" in overview
            for path in ("/groups/g1", "/groups/g1/members.csv", "/antispam", "/broadcasts", "/relay", "/try"):
                assert (await client.get(path)).status_code == 200, path
            decision = (await client.get("/antispam")).text.split('action="/antispam/', 1)[1].split("/", 1)[0]
            done = await web.post(f"/antispam/{decision}/ham", page="/antispam")
            assert "已解除拉黑" in done.headers["location"] or done.status_code == 303
            token = await _token(web, "pg", ["read"])
            groups = (await client.get("/api/v1/groups", headers=_auth(token))).json()
            assert {g["id"] for g in groups} >= {"g1"}
            assert (await client.get("/audit")).status_code == 200
            actions = [row[1] for row in await _audit(web)]
            assert actions[:3] == ["login.link", "antispam.ham", "token.create"]


async def test_the_overview_shows_outages(web: Web) -> None:
    await web.login()
    assert 'role="alert"' not in (await web.client.get("/")).text
    health = web.app.db.health
    health.outages = 1
    assert "数据库中断过 1 次" in (await web.client.get("/")).text
    health.up, health.reason = False, "connection refused"
    try:
        assert "数据库连接中断：connection refused" in (await web.client.get("/")).text
    finally:
        health.up = True
    web.app.recorder.dead_letter_path.parent.mkdir(parents=True, exist_ok=True)
    web.app.recorder.dead_letter_path.write_text('{"x": 1}\n', encoding="utf-8")
    assert "qunbot deadletter list" in (await web.client.get("/")).text


async def test_confirming_a_warned_ad_removes_the_sender_and_learns_it(tmp_path: Any) -> None:
    import httpx

    from bot.web.server import create_app
    from tests.harness import chat
    from tests.web.conftest import WORLD, web_config

    ad = "兼职日结，每天500元，私聊我"
    async with chat(web_config(tmp_path), WORLD) as bot:
        transport = httpx.ASGITransport(app=create_app(bot.sim.app))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            web = Web(bot, client)
            await bot.say("g1", "spammer", ad)
            assert not any(a.action == "kick" for a in bot.actions)
            await web.login()
            page = (await client.get("/antispam")).text
            assert "已警告" in page, page
            decision = page.split('action="/antispam/', 1)[1].split("/", 1)[0]
            done = await web.post(f"/antispam/{decision}/spam", page="/antispam")
            assert done.status_code == 303
            await bot.wait("5s")  # the removal goes out through the outbox
            bot.assert_kicked("g1", "spammer")
            note = (await client.get(done.headers["location"])).text
            assert "已将 小美 移出" in note and "已记为广告样本" in note


async def test_a_name_like_a_formula_stays_text_in_the_csv(tmp_path: Any) -> None:
    import copy

    import httpx

    from bot.web.server import create_app
    from tests.harness import chat
    from tests.web.conftest import WORLD, web_config

    world = copy.deepcopy(WORLD)
    next(c for c in world["contacts"] if c["id"] == "bob")["name"] = '=HYPERLINK("http://x.cn","点我")'
    async with chat(web_config(tmp_path), world) as bot:
        transport = httpx.ASGITransport(app=create_app(bot.sim.app))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            web = Web(bot, client)
            await bot.say("g1", "bob", "大家好")
            await web.flush()
            await web.login()
            csv = (await client.get("/groups/g1/members.csv")).text
            assert "bob,\"'=HYPERLINK(" in csv


async def test_the_accounts_page_shows_what_the_chat_command_shows(web: Web) -> None:
    web.bot.sim.platform.fault = "banned"  # the next send is refused with a ban message
    await web.bot.say("g1", "alice", "帮助")
    await web.bot.wait("5s")  # a faulty account's sends are tried during waits
    web.bot.sim.platform.fault = None
    await web.login()
    page = (await web.client.get("/accounts")).text
    assert "本账号 wxid_bot" in page and "异常：账号被封禁" in page
    assert "只有这一个账号" in page
    await web.bot.private("boss", "账号状态")
    assert "异常：账号被封禁" in (web.bot.assert_private("boss", contains="账号 wxid_bot").text or "")


async def test_the_accounts_page_is_for_bot_admins(web: Web) -> None:
    await web.login("owner1")
    assert (await web.client.get("/accounts")).status_code == 403
