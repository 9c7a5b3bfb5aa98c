"""``workbench.toml``: the team's declarations (SLOs, budgets, price overrides, LLM judge endpoint), read once.

Each section is validated by the module that owns it (``slo.py``, ``cost.py``, ``judge.py``); this module only finds and
reads the file and offers the checks they share, so every error names the file, the key and what was expected.

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "workbench.toml"
>>> _ = p.write_text('[slo.chat]\\nlatency_ms = 2000\\n')
>>> cfg = load_config(p)
>>> cfg.section("slo")
{'chat': {'latency_ms': 2000}}
>>> cfg.where("slo.chat")
'workbench.toml [slo.chat]'
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONFIG_FILE = "workbench.toml"


from workbench.errors import ConfigError  # noqa: E402,F401  (defined in errors.py; importable from here as before)


@dataclass(frozen=True)
class Config:
    """The parsed file (``data``) and where it came from (``path``, None when no file was found)."""

    data: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def section(self, name: str) -> dict[str, Any]:
        value = self.data.get(name, {})
        if not isinstance(value, dict):
            raise ConfigError(f"{self.where(name)}: expected a table, got {type(value).__name__}")
        return value

    def where(self, key: str) -> str:
        return f"{self.path.name if self.path else CONFIG_FILE} [{key}]"

    def number(self, table: dict[str, Any], key: str, where: str, *, lo: float | None = None, hi: float | None = None,
               default: Any = ..., ) -> float:
        """A number from ``table[key]``, checked against [lo, hi]."""
        if key not in table:
            if default is ...:
                raise ConfigError(f"{self.where(where)}: missing {key!r}")
            return default
        v = table[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ConfigError(f"{self.where(where)}: {key} must be a number, got {v!r}")
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise ConfigError(f"{self.where(where)}: {key} must be in [{lo}, {hi}], got {v!r}")
        return float(v)


def load_config(path: str | os.PathLike | Config | None = None) -> Config:
    """Read ``workbench.toml``: ``path``, else ``$WORKBENCH_CONFIG``, else ``./workbench.toml``; empty when none exists.

    A file that was named explicitly but does not exist, or that is not valid TOML, raises :class:`ConfigError`.
    """
    if isinstance(path, Config):
        return path
    explicit = path or os.environ.get("WORKBENCH_CONFIG")
    p = Path(explicit or CONFIG_FILE)
    if not p.exists():
        if explicit:
            raise ConfigError(f"no config file at {p}")
        return Config()
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    return Config(data=data, path=p)
