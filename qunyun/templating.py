"""Operators' message templates (话术库): sandboxed Jinja2, checked before anything is sent."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from jinja2 import FileSystemLoader, StrictUndefined, TemplateError, TemplateSyntaxError, meta
from jinja2.sandbox import SandboxedEnvironment

from qunyun.errors import BadInput

# Byte limits of the providers' payloads (UTF-8), per channel and message type.
BYTE_LIMITS = {
    ("wecom_robot", "text"): 2048,
    ("wecom_robot", "markdown"): 4096,
    ("wecom_robot", "news"): 512,  # the description of one news article
    ("wecom_customer", "text"): 4000,
}

# The variables a template may use, by audience level.
CONTEXT_VARIABLES = {
    "group": {"group", "item", "date", "weekday", "slot"},
    "member": {"member", "staff", "item", "date", "weekday", "slot"},
}


def message_environment(templates_dir: Path) -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        loader=FileSystemLoader(str(templates_dir / "messages")),
        undefined=StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    return env


def _error_line(exc: BaseException, filename: str | None) -> int | None:
    tb = exc.__traceback__
    line = None
    while tb is not None:
        if filename and tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


@dataclass
class CheckedTemplate:
    """A template compiled once and checked against the variables its level provides."""

    name: str
    channel: str
    msgtype: str
    _template: object

    def context(self, values: dict) -> dict:
        """A render context: the template's globals plus `values`, built once per item."""
        return {**self._template.globals, **values}

    def render(self, context: dict) -> str:
        """Render with a context from `context()`; the caller may update it between calls.

        The context is used as it is (shared), not copied per render: this is the planning
        hot path, a million renders for a million members.
        """
        template = self._template
        try:
            try:
                parts = template.root_render_func(template.new_context(context, shared=True))
                text = template.environment.concat(parts).strip()
            except Exception:
                template.environment.handle_exception()  # re-raised with template lines
        except Exception as exc:
            line = _error_line(exc, template.filename)
            where = f" 第 {line} 行 (line {line})" if line else ""
            raise BadInput(f"模板 {self.name}{where}: 渲染失败 (render error): {exc}") from None
        limit = BYTE_LIMITS[(self.channel, self.msgtype)]
        size = len(text.encode("utf-8"))
        if size > limit:
            raise BadInput(
                f"模板 {self.name}: 渲染结果 {size} 字节，超过 {self.channel} {self.msgtype} 上限 "
                f"{limit} 字节 (rendered content over the byte limit)"
            )
        if not text:
            raise BadInput(f"模板 {self.name}: 渲染结果为空 (rendered content is empty)")
        return text


def load_template(env: SandboxedEnvironment, name: str, level: str, channel: str,
                  msgtype: str) -> CheckedTemplate:
    """Compile `name` and check that it uses only the variables `level` provides."""
    try:
        source, filename, _ = env.loader.get_source(env, name)
    except TemplateError:
        raise BadInput(f"模板不存在 (template not found): templates/messages/{name}") from None
    try:
        ast = env.parse(source, name, filename)
    except TemplateSyntaxError as exc:
        raise BadInput(
            f"模板 {name} 第 {exc.lineno} 行 (line {exc.lineno}): 语法错误 (syntax error): "
            f"{exc.message}"
        ) from None
    undeclared = meta.find_undeclared_variables(ast) - CONTEXT_VARIABLES[level]
    if undeclared:
        raise BadInput(
            f"模板 {name}: 未定义的变量 (undefined variable) {', '.join(sorted(undeclared))}；"
            f"{level} 级消息可用: {', '.join(sorted(CONTEXT_VARIABLES[level]))}"
        )
    return CheckedTemplate(name, channel, msgtype, env.get_template(name))


def robot_payload(msgtype: str, content: str, item_vars: dict) -> str:
    """The JSON body the group robot API takes for this message, as stored in the ledger."""
    if msgtype == "news":
        article = {
            "title": item_vars.get("title", ""),
            "description": content,
            "url": item_vars.get("url", ""),
            "picurl": item_vars.get("picurl", ""),
        }
        body = {"msgtype": "news", "news": {"articles": [article]}}
    else:
        body = {"msgtype": msgtype, msgtype: {"content": content}}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))
