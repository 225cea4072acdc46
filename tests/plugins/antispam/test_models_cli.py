"""`qunbot spam-eval`, `spam-train` (+ `--activate`), `spam-replay --model`, and the running
bot following the active model file (启用新模型, a CLI activation, a damaged file)."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa

import plugins.antispam
from plugins.antispam.classifier import TextModel
from plugins.antispam.config import AntispamConfig
from plugins.antispam.detector import Detector
from plugins.antispam.evaluate import cross_validate, evaluate
from plugins.antispam.models import AntispamSample
from tests.harness import chat, write_config
from tests.plugins.antispam.test_cli import qunbot
from tests.plugins.antispam.test_teaching import SAUSAGE, SAUSAGE_AGAIN, WORLD, kicks, state_of

CORPUS = Path(plugins.antispam.__file__).with_name("corpus")
LABELLED = [
    {
        "id": "a1",
        "text": "兼职日结，日入300+，一部手机就能做，加V：abc888",
        "kind": "text",
        "spam": True,
        "family": "part_time",
        "member_days": 0,
        "member_messages": 0,
    },
    {"id": "a2", "text": "宝妈在家轻松赚，每天两小时，私我", "kind": "text", "spam": True, "family": "part_time"},
    {
        "id": "a3",
        "text": "",
        "kind": "image",
        "spam": True,
        "family": "qr_image",
        "member_days": 5,
        "member_messages": 40,
    },
    {"id": "n1", "text": "今天天气不错，出去走走", "kind": "text", "spam": False, "family": None},
    {
        "id": "n2",
        "text": "看看这个 https://shop.example.com/x",
        "kind": "text",
        "spam": False,
        "member_days": 0,
        "member_messages": 0,
    },
    {"id": "n3", "text": "", "kind": "emoticon", "spam": False},
]


def write_lines(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def config(tmp_path: Path, db: Path) -> Path:
    return write_config(
        tmp_path,
        f"""
bot_admins: [boss]
groups:
  - {{id: g1, name: 宝妈交流群}}
storage: {{url: "sqlite+aiosqlite:///{db}"}}
plugins:
  antispam:
    teaching: {{model_dir: "{tmp_path / "models"}"}}
""",
    )


def sausage_model() -> TextModel:
    """A model that calls anything about sausages an ad (what a retrained model might learn)."""
    return TextModel({"腊肠": 300.0}, -10.0, {"spam": 1, "normal": 1})


def test_spam_eval_reports_overall_per_kind_per_family_and_the_wrong_ids(tmp_path: Path) -> None:
    source = write_lines(tmp_path / "labelled.jsonl", LABELLED)
    proc = qunbot("spam-eval", "--config", str(config(tmp_path, tmp_path / "q.db")), str(source))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    overall = next(line for line in lines if line.startswith("overall"))
    # a1 and a2 caught, a3 (an old member's bare image) missed; n2 (a newcomer's link) flagged
    assert "recall 0.667 (2/3)" in overall and "false positives 0.333 (1/3)" in overall
    assert "precision 0.667" in overall
    assert any("image" in line and "recall 0.000 (0/1)" in line for line in lines)
    assert any("part_time" in line and "recall 1.000 (2/2)" in line for line in lines)
    assert any(line.strip().startswith("a3") for line in lines)
    assert any(line.strip().startswith("n2") and "new_member" in line for line in lines)
    proc = qunbot("spam-eval", "--json", "--config", str(config(tmp_path, tmp_path / "q.db")), str(source))
    summary = json.loads(proc.stdout)
    assert summary["overall"] == {
        "ads": 3,
        "caught": 2,
        "normal": 3,
        "flagged": 1,
        "recall": 0.6667,
        "false_positive_rate": 0.3333,
        "precision": 0.6667,
    }
    assert summary["families"]["qr_image"]["recall"] == 0.0
    assert [m["id"] for m in summary["missed"]] == ["a3"]
    assert [m["id"] for m in summary["false_positives"]] == ["n2"]


def test_spam_eval_judges_as_spam_check_does_and_names_unlabelled_lines(tmp_path: Path) -> None:
    source = write_lines(tmp_path / "labelled.jsonl", [*LABELLED, {"id": "x", "text": "你好"}])
    cfg = str(config(tmp_path, tmp_path / "q.db"))
    checked = [json.loads(line) for line in qunbot("spam-check", "--config", cfg, str(source)).stdout.splitlines()]
    proc = qunbot("spam-eval", "--json", "--config", cfg, str(source))
    assert proc.returncode == 1 and 'x: no label ("spam": true/false)' in proc.stderr
    summary = json.loads(proc.stdout)
    flagged = {v["id"] for v in checked if v["spam"]}
    assert flagged == {"a1", "a2", "n2"}
    assert summary["overall"]["caught"] + summary["overall"]["flagged"] == len(flagged)


def test_cross_validation_holds_each_line_out_once() -> None:
    samples = [("兼职日结一部手机就能做加我", True), ("今天天气不错出去走走吧", False)] * 10
    thresholds = {"new": 0.9, "recent": 0.9, "old": 0.9}
    everything, own = cross_validate(samples, thresholds, 6, folds=5, mark=[i >= 16 for i in range(20)])
    assert everything.ads + everything.normal == 20
    assert own.ads + own.normal == 4
    assert everything.recall == 1.0 and everything.false_positive_rate == 0.0


async def test_train_on_taught_samples_replay_the_candidate_then_activate(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    path = config(tmp_path, db)
    async with chat(path, WORLD, db_url=f"sqlite+aiosqlite:///{db}") as bot:
        await bot.say("g1", "spammer", SAUSAGE)
        await bot.say("g1", "alice", "广告", quote={"from": "spammer", "text": SAUSAGE})
        await bot.say("g1", "bob", "我家的腊肠今年还没开始灌")  # not a near-duplicate: not caught
        assert kicks(bot) == [("g1", "spammer")]
        async with bot.sim.app.db.transaction() as session:  # a damaged row: named and skipped
            await session.execute(
                sa.insert(AntispamSample.__table__).values(  # type: ignore[attr-defined]
                    at=bot.sim.clock.now(), label="ham?", text="随便一句"
                )
            )
    # Two writers' lines stand in for the shipped corpus (three trainings on all of it take
    # minutes; `test_checks` holds the shipped model to the shipped corpus).
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("ads_a.jsonl", "ham_a.jsonl"):
        (corpus / name).write_bytes((CORPUS / name).read_bytes())
    proc = qunbot("spam-train", "--config", str(path), "--folds", "2", "--corpus", str(corpus), timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert f"trained on 2644 corpus lines ({corpus}) + 1" in proc.stdout
    assert "skipped: antispam_samples row 2: label 'ham?' is neither spam nor normal" in proc.stdout
    # the taught line and the removal's labelled decision are the same text: counted once
    assert "+ 1 of this deployment's (1 ads, 0 normal)" in proc.stdout
    assert "own samples" in proc.stdout and "current model" in proc.stdout
    candidate = tmp_path / "models" / "candidate.json"
    assert TextModel.load(candidate).info["spam"] >= 1
    assert not (tmp_path / "models" / "model.json").exists()  # nothing switched on yet

    sausage_model().save(candidate)  # a candidate that differs visibly from the current model
    until = "2026-12-02T00:00:00+08:00"
    now = qunbot("spam-replay", "--config", str(path), "--days", "30", "--until", until, "--json")
    assert [json.loads(line)["member"] for line in now.stdout.splitlines()] == ["spammer"]  # the taught check
    proc = qunbot("spam-replay", "--config", str(path), "--days", "30", "--until", until, "--model", str(candidate))
    assert proc.returncode == 0, proc.stderr
    assert "按当前规则和新模型回放" in proc.stdout and "spammer" in proc.stdout

    proc = qunbot("spam-train", "--config", str(path), "--activate")
    assert proc.returncode == 0, proc.stderr
    assert TextModel.load(tmp_path / "models" / "model.json").weights == {"腊肠": 300.0}


def test_damaged_model_files_are_named(tmp_path: Path) -> None:
    path = config(tmp_path, tmp_path / "q.db")
    models = tmp_path / "models"
    models.mkdir()
    (models / "candidate.json").write_text('{"format": "qunbot-spam-model", "version": 1', encoding="utf-8")
    proc = qunbot("spam-train", "--config", str(path), "--activate")
    assert proc.returncode == 1 and str(models / "candidate.json") in proc.stderr and "invalid JSON" in proc.stderr
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in LABELLED[:2])
    (corpus / "mine.jsonl").write_text(lines + "{cut off\n", encoding="utf-8")
    proc = qunbot("spam-train", "--config", str(path), "--corpus", str(corpus))
    assert proc.returncode == 1 and f"{corpus}/mine.jsonl:3: invalid JSON" in proc.stderr
    assert not (models / "model.json").exists()
    proc = qunbot("spam-replay", "--config", str(path), "--model", str(models / "candidate.json"))
    assert proc.returncode == 2 and str(models / "candidate.json") in proc.stderr
    (models / "model.json").write_text("garbage", encoding="utf-8")
    proc = qunbot("spam-check", "--config", str(path), stdin='{"id": 1, "text": "兼职日结，加V：abc888"}\n')
    assert proc.returncode == 0  # the rules and the shipped model still judge
    assert json.loads(proc.stdout)["spam"] is True
    assert str(models / "model.json") in proc.stderr and "using the shipped model" in proc.stderr


async def test_the_running_bot_follows_the_active_file_and_chat_activation(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    path = config(tmp_path, db)
    models = tmp_path / "models"
    async with chat(path, WORLD, db_url=f"sqlite+aiosqlite:///{db}") as bot:
        live = state_of(bot).classifier
        await bot.say("g1", "bob", SAUSAGE_AGAIN)
        assert bot.said("g1", contains="请勿") == []
        sausage_model().save(models / "model.json")  # e.g. `qunbot spam-train --activate` meanwhile
        await bot.wait("31s")
        await bot.say("g1", "bob", "早上好")  # a message after the poll interval looks at the file
        assert live._task is not None
        await live._task
        assert live.source == str(models / "model.json")
        await bot.say("g1", "carol", SAUSAGE_AGAIN)
        bot.assert_said("g1", contains="疑似广告（分类器）")

        (models / "model.json").write_text("{broken", encoding="utf-8")
        await bot.wait("31s")
        await bot.say("g1", "bob", "中午好")
        await live._task
        await bot.wait("1s")  # the notice goes out through the outbox
        bot.assert_private("boss", contains="新的广告模型文件无法使用，仍沿用当前模型")
        assert live.model.weights == {"腊肠": 300.0}  # the last good model keeps running

        await bot.private("alice", "启用新模型")
        bot.assert_private("alice", contains="需要机器人管理员权限")
        await bot.private("boss", "启用新模型")
        bot.assert_private("boss", contains="没有启用新模型")
        sausage_model().save(models / "candidate.json")
        await bot.say("g1", "alice", "广告回放 30 新模型")
        bot.assert_said("g1", contains="按当前规则和新模型回放")
        TextModel({"天气": 300.0}, -10.0).save(models / "candidate.json")
        await bot.private("boss", "启用新模型")
        bot.assert_private("boss", contains="已启用新模型")
        bot.new_actions()
        await bot.say("g1", "carol", "今天天气真不错，适合出去走走啊")
        bot.assert_said("g1", contains="疑似广告（分类器）")


def test_spam_eval_counts_one_slice_per_kind_however_it_is_spelled(tmp_path: Path) -> None:
    spellings = ["mini-program", "mini_program", "MiniProgram", "card", "contact_card", "qr", "QR-code", "gif"]
    lines = [
        json.dumps({"id": f"k{i}", "text": "你好", "kind": kind, "spam": False}, ensure_ascii=False)
        for i, kind in enumerate(spellings)
    ]
    result = evaluate(lines, Detector(AntispamConfig(), stateful=False))
    assert {k: t.normal for k, t in result.kinds.items()} == {"mini_program": 3, "contact_card": 2, "qr": 2, "gif": 1}


def test_spam_eval_shows_newcomers_apart_from_old_members(tmp_path: Path) -> None:
    """The overall false-positive rate is mostly old members' chat; a newcomer's ordinary first
    words wrongly warned must show in a slice of their own."""
    senders = [(0, 0), (0.5, 5), (3, 10), (30, 2), (30, 200), (None, None), (None, 50)]
    lines = [
        json.dumps({"id": f"s{i}", "text": "你好", "member_days": d, "member_messages": m, "spam": False})
        for i, (d, m) in enumerate(senders)
    ]
    result = evaluate(lines, Detector(AntispamConfig(), stateful=False))
    assert {k: t.normal for k, t in result.standings.items()} == {"new": 3, "recent": 1, "old": 3}
    assert list(result.as_json()["standings"]) == ["new", "recent", "old"]
    report = "\n".join(result.report())
    assert "by sender" in report and "\n  new " in report


def test_cross_validation_in_worker_processes_gives_the_same_figures() -> None:
    samples = [
        ("兼职日结一部手机就能做加我", True),
        ("今天天气不错出去走走吧", False),
        ("扫码进群领红包", True),
        ("明天几点集合", False),
        ("日赚五百私我", True),
        ("谁家有多的快递盒", False),
    ] * 5
    thresholds = {"new": 0.5, "recent": 0.5, "old": 0.5}
    mark = [i % 4 == 0 for i in range(len(samples))]
    alone = cross_validate(samples, thresholds, 2, folds=3, mark=mark)
    assert cross_validate(samples, thresholds, 2, folds=3, mark=mark, workers=2) == alone
