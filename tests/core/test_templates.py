import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from bot.core.templates import Template, TemplateError, template_type

ALLOWED = ("user", "group", "昵称")


def test_render() -> None:
    t = Template.parse("欢迎{user}加入「{group}」！{{原样}} }}{{", ALLOWED)
    assert t.render({"user": "Alice", "group": "宝妈群"}) == "欢迎Alice加入「宝妈群」！{原样} }{"
    assert t.names == {"user", "group"}
    assert str(t) == "欢迎{user}加入「{group}」！{{原样}} }}{{"


def test_render_plain_text_and_adjacent_fields() -> None:
    assert Template.parse("没有占位符", ALLOWED).render({}) == "没有占位符"
    assert Template.parse("{user}{group}{user}", ALLOWED).render({"user": 1, "group": 2}) == "121"
    assert Template.parse("{{{user}}}", ALLOWED).render({"user": "x"}) == "{x}"
    assert Template.parse("{昵称}好", ALLOWED).render({"昵称": "小明"}) == "小明好"


def test_missing_or_none_values_render_empty() -> None:
    t = Template.parse("[{user}|{group}]", ALLOWED)
    assert t.render({}) == "[|]"
    assert t.render({"user": None, "group": 0}) == "[|0]"


def test_render_only_calls_str() -> None:
    class Sneaky:
        secret = "leak"

        def __format__(self, spec: str) -> str:
            raise AssertionError("format must not be used")

        def __getattr__(self, name: str) -> str:
            raise AssertionError("attributes must not be read")

        def __str__(self) -> str:
            return "safe"

    assert Template.parse("{user}", ALLOWED).render({"user": Sneaky()}) == "safe"
    # A value that looks like a template is not expanded again.
    assert Template.parse("{user}", ALLOWED).render({"user": "{group}"}) == "{group}"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{user.__class__}", r"placeholder \{user.__class__\}: attribute access"),
        ("{user.__init__.__globals__}", "attribute access"),
        ("{0}", r"placeholder \{0\} is not a name"),
        ("{a[0]}", "indexing"),
        ("{user[0]}", "indexing"),
        ("{user!r}", "conversions"),
        ("{user:>10}", "format specs"),
        ("{usr}", r"unknown placeholder \{usr\} \(did you mean \{user\}\?\)"),
        ("{password}", r"unknown placeholder \{password\}"),
        ("{ user }", "spaces inside"),
        ("{}", "empty placeholder"),
        ("hello {user", "unclosed '\\{' at position 7"),
        ("hello user}", "'\\}' without a matching"),
        ("{a{b}c}", "unclosed"),
    ],
)
def test_rejected(text: str, reason: str) -> None:
    with pytest.raises(TemplateError, match=reason) as info:
        Template.parse(text, ALLOWED)
    # Every error lists what is allowed.
    assert "allowed placeholders: {group}, {user}, {昵称}" in str(info.value)


def test_no_placeholders_allowed() -> None:
    with pytest.raises(TemplateError, match="allowed placeholders: none"):
        Template.parse("{user}", ())


def test_parse_is_cached_and_templates_are_values() -> None:
    a = Template.parse("hi {user}", ["user", "group"])
    b = Template.parse("hi {user}", ("group", "user"))
    assert a is b
    assert a == Template.parse("hi {user}", {"user"})
    assert hash(a) == hash(Template.parse("hi {user}", {"user"}))


def test_parse_rejects_non_text() -> None:
    with pytest.raises(TemplateError, match="must be text"):
        Template.parse(["{user}"], ALLOWED)  # type: ignore[arg-type]


class Welcome(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: template_type("user", "group") = "欢迎{user}"  # type: ignore[valid-type]


def test_pydantic_field_validates_at_load() -> None:
    assert Welcome(text="hi {group}").text == "hi {group}"
    assert Welcome().text == "欢迎{user}"
    with pytest.raises(ValidationError) as info:
        Welcome(text="hi {user.__dict__}")
    error = info.value.errors()[0]
    assert error["loc"] == ("text",)
    assert "attribute access" in error["msg"]
    assert "{group}, {user}" in error["msg"]
