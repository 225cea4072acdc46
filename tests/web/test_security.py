"""What the console must refuse: no page or API call without a session or token, no form
without its CSRF token, no second use of a login link, no other group's data for a group
admin; and what it must never do: run HTML from a group name or a message, log a token."""

from __future__ import annotations

import logging

import pytest

from tests.web.conftest import Web

PAGES = [
    "/",
    "/groups/g1",
    "/groups/g1/members.csv",
    "/antispam",
    "/broadcasts",
    "/broadcasts/x",
    "/config",
    "/audit",
    "/tokens",
]
FORMS = ["/broadcasts", "/broadcasts/preview", "/config", "/config/check", "/tokens", "/antispam/1/ham", "/logout"]


async def test_no_page_without_a_session(web: Web) -> None:
    for path in PAGES:
        response = await web.client.get(path)
        assert response.status_code == 303 and response.headers["location"] == "/login", path
    htmx = await web.client.get("/", headers={"HX-Request": "true"})
    assert htmx.status_code == 401 and htmx.headers["HX-Redirect"] == "/login"


async def test_no_api_call_without_a_valid_token(web: Web) -> None:
    calls = [("GET", "/api/v1/groups"), ("GET", "/api/v1/groups/g1/members"), ("GET", "/api/v1/groups/g1/stats")]
    calls += [("POST", "/api/v1/groups/g1/messages"), ("POST", "/api/v1/broadcasts")]
    for method, path in calls:
        for headers in ({}, {"Authorization": "Bearer qb_not-a-token"}, {"Authorization": "Basic Ym9zczpib3Nz"}):
            response = await web.client.request(method, path, headers=headers, json={})
            assert response.status_code == 401, (method, path, headers, response.text)
    # A session cookie is not an API credential.
    await web.login()
    assert (await web.client.get("/api/v1/groups")).status_code == 401


async def test_every_form_needs_the_csrf_token(web: Web) -> None:
    await web.login()
    for path in FORMS:
        missing = await web.client.post(path, data={"text": "x", "when": "每天08:00", "content": "x", "name": "t"})
        wrong = await web.client.post(path, data={"csrf": "forged", "when": "每天08:00", "content": "x"})
        header = await web.client.post(path, headers={"X-CSRF-Token": "forged"}, data={"when": "x"})
        for response in (missing, wrong, header):
            assert response.status_code == 403, (path, response.status_code)
            assert "CSRF" in response.text
    assert web.bot.sim.app.dispatcher.runtime.hosts["broadcast"].state.defs == {}


async def test_a_login_link_works_once_and_not_after_ten_minutes(web: Web) -> None:
    link = await web.link_for("boss")
    token = await web.csrf(link)
    assert (await web.client.post(link, data={"csrf": token})).status_code == 303
    web.client.cookies.clear()
    token = await web.csrf(link)
    again = await web.client.post(link, data={"csrf": token})
    assert again.status_code == 403 and "已经用过" in again.text
    late = await web.link_for("boss")
    await web.bot.wait("11m")
    token = await web.csrf(late)
    assert (await web.client.post(late, data={"csrf": token})).status_code == 403
    # Viewing the link (a chat app drawing a preview) does not use it up.
    fresh = await web.link_for("boss")
    await web.client.get(fresh)
    await web.client.get(fresh)
    assert (await web.client.post(fresh, data={"csrf": await web.csrf(fresh)})).status_code == 303


async def test_only_admins_get_a_link(web: Web) -> None:
    await web.bot.private("bob", "后台")
    web.bot.assert_private("bob", contains="只有机器人管理员和群管理员")
    assert "login/link" not in (web.bot.assert_private("bob").text or "")


async def test_failed_logins_are_rate_limited(web: Web) -> None:
    for _ in range(5):
        token = await web.csrf("/login/link/guess")
        assert (await web.client.post("/login/link/guess", data={"csrf": token})).status_code == 403
    link = await web.link_for("boss")
    token = await web.csrf(link)
    refused = await web.client.post(link, data={"csrf": token})
    assert refused.status_code == 429 and "太多" in refused.text


async def test_a_group_admin_sees_only_their_groups(web: Web) -> None:
    for gid in ("g1", "g2", "g3"):
        await web.bot.say(gid, "owner1", "大家好")
    await web.flush()
    await web.login("alice")  # admin of g1 only
    overview = await web.client.get("/")
    assert overview.status_code == 200
    assert "/groups/g1" in overview.text and "/groups/g2" not in overview.text
    assert (await web.client.get("/groups/g1")).status_code == 200
    for path in ("/groups/g2", "/groups/g2/members.csv", "/antispam?group=g2", "/config", "/tokens"):
        response = await web.client.get(path)
        assert response.status_code == 403, path
    created = await web.post("/broadcasts", {"when": "每天08:00", "group": "g2", "content": "hi"})
    assert created.status_code == 403


async def test_html_in_group_names_and_messages_is_escaped(web: Web) -> None:
    await web.bot.say("g3", "owner1", "<img src=x onerror=alert(1)>")
    await web.flush()
    await web.login()
    overview = (await web.client.get("/")).text
    assert "<script>alert" not in overview and "&lt;script&gt;alert" in overview
    detail = (await web.client.get("/groups/g3")).text
    assert "<script>alert" not in detail
    assert "\\u003cscript\\u003e" in detail or "&lt;script&gt;" in detail


@pytest.mark.parametrize("level", [logging.DEBUG])
async def test_tokens_never_reach_the_logs(web: Web, caplog: pytest.LogCaptureFixture, level: int) -> None:
    caplog.set_level(level)
    link = await web.link_for("boss")
    secret = link.rsplit("/", 1)[1]
    await web.client.post(link, data={"csrf": await web.csrf(link)})
    page = await web.post("/tokens", {"name": "crm", "scopes": ["read", "send"]}, page="/tokens")
    api_token = page.text.split('id="new-token">', 1)[1].split("<", 1)[0]
    assert api_token.startswith("qb_")
    assert (await web.client.get("/api/v1/groups", headers={"Authorization": f"Bearer {api_token}"})).status_code == 200
    await web.client.get("/api/v1/groups", headers={"Authorization": "Bearer qb_wrong"})
    # The test's own HTTP client (httpx) logs the URLs it requests; the server logs nothing of them.
    ours = [r for r in caplog.records if r.name != "httpx"]
    leaked = [f"{r.name}: {r.getMessage()}" for r in ours if secret in r.getMessage() or api_token in r.getMessage()]
    assert not leaked
    # Hashed at rest: the database holds neither.
    async with web.app.db.engine.connect() as conn:
        import sqlalchemy as sa

        for table in ("web_login_links", "web_api_tokens"):
            dump = str((await conn.execute(sa.text(f"SELECT * FROM {table}"))).all())
            assert secret not in dump and api_token not in dump


async def test_the_session_cookie_is_signed_httponly_and_samesite(web: Web) -> None:
    link = await web.link_for("boss")
    page = await web.client.get(link)
    cookie = page.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
    assert page.headers["x-frame-options"] == "DENY" and page.headers["referrer-policy"] == "no-referrer"
    await web.client.post(link, data={"csrf": await web.csrf(link)})
    assert (await web.client.get("/")).status_code == 200
    # A tampered cookie is no session.
    value = web.client.cookies["qunbot_session"]
    web.client.cookies.set("qunbot_session", value[:-4] + ("AAAA" if not value.endswith("AAAA") else "BBBB"))
    assert (await web.client.get("/")).status_code == 303


async def test_an_admin_who_loses_the_role_loses_the_console(web: Web) -> None:
    await web.login("alice")  # admin of g1
    assert (await web.client.get("/groups/g1")).status_code == 200
    group = web.bot.sim.world.groups["g1"]
    group.admins.discard("alice")
    web.app.services.groups.forget("g1")
    await web.bot.wait("2m")
    response = await web.client.get("/groups/g1")
    assert response.status_code == 303 and response.headers["location"] == "/login"
