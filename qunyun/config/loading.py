"""Reading one YAML file into one pydantic model, with one clear line when it is wrong."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from qunyun.errors import BadInput

M = TypeVar("M", bound=BaseModel)


def load_yaml_model(path: Path, model: type[M]) -> M:
    if not path.exists():
        raise BadInput(f"配置文件不存在 (config file missing): {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" 第 {mark.line + 1} 行 (line {mark.line + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise BadInput(f"{path}{where}: YAML 格式错误 (invalid YAML): {problem}") from None
    except UnicodeDecodeError:
        raise BadInput(f"{path}: 配置文件必须是 UTF-8 编码 (config must be UTF-8)") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "(根 root)"
        more = f" (另有 {len(exc.errors()) - 1} 处 more)" if len(exc.errors()) > 1 else ""
        raise BadInput(f"{path}: 键 {key}: {err['msg']}{more}") from None
