"""Several accounts end to end (issue 17): three real `qunbot run` processes, each logged in to
its own Wechaty gateway, on one PostgreSQL with `cluster.enabled`. The same rooms exist on every
gateway, with every account a member, and each member's message or join is delivered to every
account, under one message id, as WeChat delivers it.

A scripted load (a keyword that gets a reply, joins that get a welcome, check-ins) runs in three
rooms; then the account on duty in the first room is killed with SIGKILL (no goodbye, its
leases simply stop being renewed). Probes go into the rooms it served until another account
answers: that is the handover time, printed and bounded by the lease TTL. The load then runs
again; the killed account is started again (a new process, taking back a room pinned to it) and
the load runs a third time. Every expected reply must appear exactly once across all gateways,
sent by one account.

The probes that arrive while nobody holds a dead account's rooms (between the kill and the
takeover) are expected too: the account that takes a room over answers them then, once
(bot/cluster/catchup.py). Their number is printed; any of them unanswered counts as missing,
answered twice as doubled.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.conftest import create_pg_database, drop_pg_database, run_in_thread
from tests.e2e.conftest import BOT_NAME, MISSING, plugin_missing, write_config
from tests.e2e.support import ENDPOINT_ENV, TOKEN_ENV, Bot, Gateway, wait_until

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.skipif(MISSING is not None, reason=str(MISSING)),
    pytest.mark.skipif(plugin_missing("checkin") is not None, reason=str(plugin_missing("checkin"))),
]

ACCOUNTS = ["bot_one", "bot_two", "bot_three"]
ROOMS = ["room_c1@chatroom", "room_c2@chatroom", "room_c3@chatroom"]
PEOPLE = [f"contact_p{i:02d}" for i in range(24)]
JOINERS = [f"contact_j{i:02d}" for i in range(24)]
LEASE_TTL = 3.0  # short, for a quick test: renewed every 1 s, a lease row lasts 2 s past its renewal
SAFETY = 0.5

# The pinned rooms spread the duty, so killing one account leaves rooms that must not notice.
CLUSTER = f"""\
other_bots: [{", ".join(ACCOUNTS)}]
cluster:
  enabled: true
  lease_ttl: {LEASE_TTL}
  safety_margin: {SAFETY}
  pinned: {{{ROOMS[1]}: {ACCOUNTS[1]}, {ROOMS[2]}: {ACCOUNTS[2]}}}
"""
PLUGINS = """\
keyword_reply:
  max_replies_per_minute: 500
  rules:
    - {name: ping, match: regex, pattern: "^ping (?P<n>[0-9]+)$", replies: ["pong {n}"]}
welcome:
  text: "欢迎 {members} 加入「{group}」！"
  merge_window_seconds: 0
checkin:
  replies: {mode: each}
"""


def world(self_id: str) -> dict[str, Any]:
    """One account's view: itself, the other accounts as contacts, the shared rooms."""
    people = [{"id": p, "name": p.removeprefix("contact_").upper()} for p in PEOPLE + JOINERS]
    others = [{"id": a, "name": a} for a in ACCOUNTS if a != self_id]
    return {
        "self": {"id": self_id, "name": BOT_NAME},
        "contacts": people + others,
        "rooms": [
            {"id": room, "topic": f"多账号群{i}", "ownerId": PEOPLE[0], "memberIds": [*ACCOUNTS, *PEOPLE]}
            for i, room in enumerate(ROOMS, 1)
        ],
    }


@dataclass
class Account:
    id: str
    gateway: Gateway
    bot: Bot
    killed: bool = False


@dataclass
class Ledger:
    """What the driver expects to see said, by key; and, of that, what it sent while a room had nobody."""

    expected: set[tuple[str, str, str]] = field(default_factory=set)
    handover_probes: set[tuple[str, str, str]] = field(default_factory=set)


class Cluster:
    def __init__(self, accounts: list[Account], db_url: str) -> None:
        self.accounts = accounts
        self.db_url = db_url
        self.ledger = Ledger()
        self._ids = 0
        self._pings = 0
        self._people = iter(PEOPLE)
        self._joiners = iter(JOINERS)
        self.reconnects = 0  # deliveries that waited for a bot to reconnect

    @property
    def alive(self) -> list[Account]:
        return [a for a in self.accounts if not a.killed]

    # --- the world, as WeChat delivers it to every account in a room -----------------------
    def say(self, room: str, sender: str, text: str) -> None:
        self._ids += 1
        message_id = f"msg_cluster_{self._ids}"
        for account in self.alive:
            self._connected(account)
            try:
                account.gateway.say(room, sender, text, id=message_id)
            except AssertionError as exc:  # it went away just now: deliver when it is back
                if "not logged in" not in str(exc):
                    raise
                self._connected(account)
                account.gateway.say(room, sender, text, id=message_id)

    def join(self, room: str, contact: str) -> None:
        for account in self.alive:
            self._connected(account)
            account.gateway.join(room, [contact], inviter=PEOPLE[0])

    def _connected(self, account: Account) -> None:
        """Wait while a bot reconnects to its gateway (its liveness check can time out on a
        loaded machine): the puppet is logged out meanwhile, and an event would go nowhere.
        WeChat would hold the message for the account until it is back."""
        health = account.gateway.health()
        if health["loggedIn"] and health["clientConnected"]:
            return
        self.reconnects += 1
        wait_until(
            lambda: (h := account.gateway.health())["loggedIn"] and h["clientConnected"],
            30,
            f"{account.id} to be connected to its gateway again",
            every=0.1,
        )

    # --- the scripted load ----------------------------------------------------------------
    def ping(self, room: str) -> tuple[str, str, str]:
        self._pings += 1
        self.say(room, PEOPLE[self._pings % len(PEOPLE)], f"ping {self._pings}")
        return ("pong", room, str(self._pings))

    def load(self, pings: int = 6, joins: int = 2, checkins: int = 2) -> None:
        for room in ROOMS:
            for _ in range(pings):
                self.ledger.expected.add(self.ping(room))
            for _ in range(joins):
                joiner = next(self._joiners)
                self.join(room, joiner)
                self.ledger.expected.add(("welcome", room, joiner))
            for _ in range(checkins):
                member = next(self._people)  # each checks in once: every reply is a first one
                self.say(room, member, "签到")
                self.ledger.expected.add(("checkin", room, member))

    # --- what the accounts said -------------------------------------------------------------
    def said(self) -> tuple[dict[tuple[str, str, str], list[str]], list[dict[str, Any]]]:
        """Every message every gateway's account sent: by key, the accounts that said it, and
        what matched no key at all."""
        by_key: dict[tuple[str, str, str], list[str]] = defaultdict(list)
        stray: list[dict[str, Any]] = []
        for account in self.accounts:
            for entry in account.gateway.sent(0):
                key = classify(entry)
                if key is None:
                    stray.append({**entry, "account": account.id})
                else:
                    by_key[key].append(account.id)
        return by_key, stray

    def wait_all_said(self, keys: set[tuple[str, str, str]], seconds: float = 30.0) -> None:
        deadline = time.monotonic() + seconds
        while True:
            by_key, _ = self.said()
            missing = sorted(k for k in keys if not by_key.get(k))
            if not missing:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"after {seconds:g} s, {len(missing)} expected replies missing: {missing}")
            time.sleep(0.2)

    def duty(self) -> dict[str, tuple[str, int]]:
        """The live duty leases in the database: room -> (account, fencing token)."""
        return run_in_thread(lambda: _duty_rows(self.db_url))


async def _duty_rows(url: str) -> dict[str, tuple[str, int]]:
    import asyncpg

    from tests.conftest import _dsn

    conn = await asyncpg.connect(_dsn(url), timeout=3)
    try:
        rows = await conn.fetch("SELECT group_id, account_id, token FROM cluster_duty WHERE expires_at > now()")
    finally:
        await conn.close()
    return {r["group_id"]: (r["account_id"], int(r["token"])) for r in rows}


def classify(entry: dict[str, Any]) -> tuple[str, str, str] | None:
    text, room = entry.get("text") or "", entry.get("roomId") or ""
    if text.startswith("pong "):
        return ("pong", room, text.removeprefix("pong "))
    mentioned = entry.get("mentionIds") or []
    if text.startswith("欢迎 ") and len(mentioned) == 1:
        return ("welcome", room, mentioned[0])
    if "签到成功" in text and len(mentioned) == 1:
        return ("checkin", room, mentioned[0])
    return None


@pytest.fixture
def cluster(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    db_url = create_pg_database(pg_server)
    accounts: list[Account] = []
    try:
        for account_id in ACCOUNTS:
            workdir = tmp_path_factory.mktemp(f"cluster-{account_id}")
            token = f"e2e-secret-{secrets.token_hex(8)}"
            gateway = Gateway(workdir, token, world=world(account_id))
            config = write_config(workdir, PLUGINS, bot_id=account_id, storage_url=db_url, extra=CLUSTER)
            bot = Bot(workdir, config, {ENDPOINT_ENV: gateway.endpoint, TOKEN_ENV: token})
            accounts.append(Account(account_id, gateway, bot))
        # Everything starts at once: Node and Python take seconds each to load, and a bot whose
        # gateway is not listening yet reconnects (migrations are serialised by a lock).
        with ThreadPoolExecutor(len(accounts)) as pool:
            gateways = [pool.submit(account.gateway.start) for account in accounts]
            for account in accounts:
                account.bot.start(ready=False)
            for started in gateways:
                started.result()
        for account in accounts:
            account.bot.wait_ready()
        yield Cluster(accounts, db_url)
    finally:
        for account in accounts:
            account.bot.stop()
            account.gateway.close()
        drop_pg_database(db_url)


def test_kill_the_account_on_duty_another_answers_nothing_doubled_or_missing(cluster: Cluster) -> None:
    started = time.monotonic()

    # The pinned rooms reach their accounts about two renewal rounds after those register.
    def settled() -> bool:
        holders = {room: account for room, (account, _) in cluster.duty().items()}
        return holders.keys() == set(ROOMS) and holders[ROOMS[1]] == ACCOUNTS[1] and holders[ROOMS[2]] == ACCOUNTS[2]

    wait_until(settled, LEASE_TTL * 4, "every room to have its account on duty", every=0.2)
    cluster.load()
    cluster.wait_all_said(cluster.ledger.expected)
    # One id is one message: a gateway refuses a second message under an id it has delivered.
    with pytest.raises(AssertionError, match="409"):
        cluster.accounts[0].gateway.say(ROOMS[0], PEOPLE[0], "ping 1", id="msg_cluster_1")

    before = cluster.duty()
    victim_id = before[ROOMS[0]][0]
    victim = next(a for a in cluster.accounts if a.id == victim_id)
    orphaned = sorted(room for room, (account, _) in before.items() if account == victim_id)
    killed_at = time.time()
    victim.bot.kill()
    victim.killed = True

    # Probe the rooms it served until another account answers in each.
    answered_at: dict[str, float] = {}
    probes: dict[str, list[tuple[tuple[str, str, str], float]]] = defaultdict(list)
    deadline = time.monotonic() + LEASE_TTL + 10
    while len(answered_at) < len(orphaned):
        assert time.monotonic() < deadline, f"no account took over {set(orphaned) - set(answered_at)}"
        for room in orphaned:
            if room not in answered_at:
                probes[room].append((cluster.ping(room), time.time()))
        time.sleep(0.25)
        sent = [entry for account in cluster.alive for entry in account.gateway.sent(0)]
        for room in orphaned:
            keys = {key for key, _ in probes[room]}
            times = [entry["timestamp"] / 1000 for entry in sent if classify(entry) in keys]
            if room not in answered_at and times:
                answered_at[room] = min(times)
    handover = {room: at - killed_at for room, at in answered_at.items()}
    # Every probe must be answered once, those sent before the first answer (nobody on duty
    # then: answered by the new account's catch-up) as much as the others.
    for room in orphaned:
        cluster.ledger.expected.update(key for key, _ in probes[room])
        cluster.ledger.handover_probes.update(key for key, sent in probes[room] if sent < answered_at[room])

    cluster.load()
    cluster.wait_all_said(cluster.ledger.expected)
    after = cluster.duty()

    # The killed account comes back as a new process: it registers anew and takes back the room
    # pinned to it (if any), and the load runs once more.
    said_before_restart = len(victim.gateway.sent(0))
    victim.bot.start()
    victim.killed = False
    wait_until(settled, LEASE_TTL * 4, "the pinned rooms back with their accounts", every=0.2)
    back = cluster.duty()
    cluster.load()
    cluster.wait_all_said(cluster.ledger.expected)
    time.sleep(1.0)  # a doubled reply would land now

    by_key, stray = cluster.said()
    doubled = {k: who for k, who in by_key.items() if len(who) > 1}
    missing = sorted(cluster.ledger.expected - by_key.keys())
    in_window = cluster.ledger.handover_probes
    print(
        f"\ncluster e2e: {len(cluster.accounts)} accounts, {len(ROOMS)} rooms, lease_ttl {LEASE_TTL:g} s; "
        f"killed {victim_id} (on duty in {', '.join(orphaned)}), then restarted it; "
        f"handover {', '.join(f'{r}: {s:.2f} s' for r, s in handover.items())}; "
        f"{len(cluster.ledger.expected)} expected actions, doubled {len(doubled)}, missing {len(missing)}; "
        f"{len(in_window)} probe(s) sent in the handover window, missing {len(in_window - by_key.keys())}, "
        f"doubled {len(in_window & doubled.keys())}; "
        f"{cluster.reconnects} delivery(ies) waited for a reconnect; "
        f"actions per account {dict(Counter(a for who in by_key.values() for a in who))}; "
        f"{time.monotonic() - started:.1f} s"
    )
    assert doubled == {}
    assert missing == []
    assert in_window, "no probe fell in the handover window: the catch-up was not exercised"
    assert stray == []
    for room, seconds in handover.items():
        # Within the TTL, give or take the probes' spacing and the reply's way out.
        assert 0 < seconds <= LEASE_TTL + 1.0, (room, seconds)
        new_holder, token = after[room]
        assert new_holder != victim_id and token == before[room][1] + 1  # a takeover: a new fencing token
    for room in set(ROOMS) - set(orphaned):
        assert after[room] == before[room]  # the others' rooms did not notice
    assert said_before_restart > 0  # it did act before it died
    pinned_back = [room for room in orphaned if room != ROOMS[0]]
    for room in pinned_back:  # handed back to it: one more takeover
        assert back[room] == (victim_id, after[room][1] + 1)
    if pinned_back:
        assert len(victim.gateway.sent(0)) > said_before_restart  # and it acts there again
