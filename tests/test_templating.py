"""Operators' templates: checked before any send, with the template's name and line."""

import pytest
from jinja2.exceptions import SecurityError

from qunyun.errors import BadInput
from qunyun.templating import load_template, message_environment, robot_payload


@pytest.fixture
def env(tmp_path):
    (tmp_path / "messages/t").mkdir(parents=True)
    return tmp_path, message_environment(tmp_path)


def write(root, name, text):
    (root / "messages" / name).write_text(text, encoding="utf-8")
    return name


def test_syntax_error_names_template_and_line(env):
    root, e = env
    name = write(root, "t/broken.j2", "第一行\n{% if group.name %}\n没有结束")
    with pytest.raises(BadInput, match=r"模板 t/broken.j2 第 3 行 .*syntax error"):
        load_template(e, name, "group", "wecom_robot", "text")


def test_a_variable_the_level_does_not_provide_is_refused_up_front(env):
    root, e = env
    name = write(root, "t/var.j2", "{{ member.nickname }} 在 {{ shop.name }}")
    with pytest.raises(BadInput, match="未定义的变量 .*member, shop"):
        load_template(e, name, "group", "wecom_robot", "text")


def test_an_undefined_attribute_fails_at_render_with_its_line(env):
    root, e = env
    name = write(root, "t/attr.j2", "你好\n{{ item.missing }}")
    template = load_template(e, name, "group", "wecom_robot", "text")
    with pytest.raises(BadInput, match=r"t/attr.j2 第 2 行 .*render error.*missing"):
        template.render({"item": {}, "group": {}})


def test_content_over_the_provider_byte_limit_is_refused(env):
    root, e = env
    name = write(root, "t/long.j2", "{{ item.text }}")
    template = load_template(e, name, "group", "wecom_robot", "text")
    assert template.render({"item": {"text": "好" * 682}})  # 2046 bytes
    with pytest.raises(BadInput, match="2049 字节，超过 wecom_robot text 上限 2048"):
        template.render({"item": {"text": "好" * 683}})


def test_templates_cannot_reach_python_internals(env):
    root, e = env
    name = write(root, "t/escape.j2", "{{ item.__class__.__mro__[1].__subclasses__() }}")
    template = load_template(e, name, "group", "wecom_robot", "text")
    with pytest.raises((BadInput, SecurityError)):
        template.render({"item": {}})


def test_missing_template_is_named(env):
    _, e = env
    with pytest.raises(BadInput, match="template not found.*t/nope.j2"):
        load_template(e, "t/nope.j2", "group", "wecom_robot", "text")


def test_news_payload_is_the_documented_shape():
    body = robot_payload("news", "描述", {"title": "标题", "url": "https://example.com/a",
                                          "picurl": "https://example.com/a.png"})
    assert body == ('{"msgtype":"news","news":{"articles":[{"title":"标题","description":"描述",'
                    '"url":"https://example.com/a","picurl":"https://example.com/a.png"}]}}')
