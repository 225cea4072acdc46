"""The penalties part of the group rules (群规), written from the anti-spam settings, so the
rules a group reads can never disagree with what the bot does: "3 次提醒后移出" only where
`strikes.limit` is 3, "直接移出" only for what a rule set to `remove` removes at once."""

from __future__ import annotations

from .config import AntispamConfig

# What each immediate removal is about, in the words a member reads.
_RULE_LABELS = {
    "contact": "隐藏的联系方式",
    "links": "可疑链接",
    "new_member": "新成员刚进群就发链接、名片或二维码",
    "flood": "刷屏",
    "wave": "多人刷同样的推广内容",
    "mentions": "一次 @ 很多人",
    "classifier": "广告",
}
_KIND_LABELS = {"contact_card": "名片", "mini_program": "小程序", "file": "文件", "qr_code": "二维码"}


def _hours(hours: float) -> str:
    if hours >= 48 and hours % 24 == 0:
        return f"{int(hours // 24)} 天"
    return f"{hours:g} 小时"


def removed_at_once(config: AntispamConfig) -> list[str]:
    """What is removed without a warning first, as members would name it."""
    out: list[str] = []
    if config.blacklist.action == "remove" and config.blacklist.words:
        out.append("违禁词")
    if config.ad_content.action != "ignore" and (
        config.ad_content.action == "remove" or config.ad_content.remove_at is not None
    ):
        out.append("明显的广告")
    for name, label in _RULE_LABELS.items():
        rule = getattr(config, name)
        if name == "classifier" and not config.classifier.enabled:
            continue
        if rule.action == "remove" and label not in out:
            out.append(label)
    kinds = [label for kind, label in _KIND_LABELS.items() if getattr(config.kinds, kind) == "remove"]
    if kinds:
        out.append("发" + "、".join(kinds))
    qr = config.qr.actions
    if config.qr.enabled and "remove" in (qr.group_invite, qr.contact, qr.telegram):
        out.append("新成员发群二维码或个人二维码")
    return out


def penalties(config: AntispamConfig) -> str:
    """One sentence: what happens to whom posts ads, as the settings have it."""
    if config.dry_run:
        return "发广告、引流的消息会被记录，由管理员处理。"
    limit, window = config.strikes.limit, _hours(config.strikes.window_hours)
    if limit <= 1:
        text = "发广告、引流一次即移出本群"
    else:
        text = f"发广告、引流会收到提醒，{window}内累计 {limit} 次将被移出本群"
    at_once = removed_at_once(config)
    if at_once and limit > 1:
        text += f"；{'、'.join(at_once)}直接移出"
    return text + "。"
