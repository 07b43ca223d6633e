"""Reads the appliance's configuration: a TOML file, then the environment, with secrets only from files.

Why a hand-written reader: the whole configuration is a dozen typed values, and each wrong or missing value must
stop start-up with a message that names the setting (STIG: fail securely). A generic settings library would add
a dependency and hide that message behind its own.

Precedence: environment variable `APPLIANCE_<SECTION>_<KEY>` > TOML file > default. A secret is never read from
the environment or the file itself: only from the path in `<NAME>_FILE`, so it cannot leak through `ps`,
`/proc/*/environ` or a copied config file.
"""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigError(Exception):
    """A configuration value is wrong or missing; the message names the setting and what is expected."""


@dataclass
class Config:
    """Typed access to one loaded configuration; every getter names `section.key` in its error."""

    source: str
    values: Mapping[str, Any]
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    def _raw(self, name: str) -> Any:
        env_name = "APPLIANCE_" + name.upper().replace(".", "_")
        if env_name in self.environ:
            return self.environ[env_name]
        node: Any = self.values
        for part in name.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return None
            node = node[part]
        return node

    def _get(self, name: str, default: Any, convert: Callable[[Any], Any], expected: str) -> Any:
        raw = self._raw(name)
        if raw is None:
            if default is _REQUIRED:
                raise ConfigError(f"setting '{name}' is required ({expected}) in {self.source}")
            return default
        try:
            return convert(raw)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"setting '{name}' must be {expected}, got {raw!r}") from exc

    def string(self, name: str, default: Any = None) -> Any:
        return self._get(name, _required(default), _as_string, "a non-empty string")

    def boolean(self, name: str, default: Any = None) -> Any:
        return self._get(name, _required(default), _as_bool, "true or false")

    def integer(self, name: str, default: Any = None, *, minimum: int = 0) -> Any:
        def convert(raw: Any) -> int:
            value = _as_int(raw)
            if value < minimum:
                raise ValueError(f"below {minimum}")
            return value

        return self._get(name, _required(default), convert, f"an integer >= {minimum}")

    def string_list(self, name: str, default: Any = None) -> Any:
        return self._get(name, _required(default), _as_string_list, "a list of strings")

    def path(self, name: str, default: Any = None) -> Any:
        return self._get(name, _required(default), lambda raw: Path(_as_string(raw)), "a filesystem path")

    def secret(self, name: str, *, required: bool = True) -> str | None:
        """Read a secret from the file named by `<name>_file`; refuse files others can read."""
        file_setting = f"{name}_file"
        path_value = self._raw(file_setting)
        if self._raw(name) is not None:
            raise ConfigError(
                f"setting '{name}' must not hold the secret itself; put it in a file and set '{file_setting}'"
            )
        if path_value is None:
            if required:
                raise ConfigError(f"setting '{file_setting}' is required (path to a file holding the secret)")
            return None
        return read_secret_file(Path(_as_string(path_value)), setting=file_setting)


_REQUIRED = object()


def _required(default: Any) -> Any:
    return _REQUIRED if default is None else default


def _as_string(raw: Any) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError("not a non-empty string")
    return raw.strip()


def _as_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in {"true", "1", "yes", "on"}:
        return True
    if isinstance(raw, str) and raw.lower() in {"false", "0", "no", "off"}:
        return False
    raise ValueError("not a boolean")


def _as_int(raw: Any) -> int:
    if isinstance(raw, bool):
        raise ValueError("a boolean is not an integer")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str) and raw.strip().lstrip("-").isdigit():
        return int(raw)
    raise ValueError("not an integer")


def _as_string_list(raw: Any) -> list[str]:
    if isinstance(raw, str):
        raw = [part for part in raw.split(",") if part.strip()]
    if not isinstance(raw, list) or not all(isinstance(item, str) and item.strip() for item in raw):
        raise ValueError("not a list of strings")
    return [item.strip() for item in raw]


def read_secret_file(path: Path, *, setting: str) -> str:
    """Return a secret file's stripped contents; it must exist, be non-empty and unreadable by others."""
    try:
        info = path.stat()
    except OSError as exc:
        raise ConfigError(f"setting '{setting}': cannot read secret file {path}: {exc.strerror}") from exc
    if info.st_mode & (stat.S_IRWXO | stat.S_IWGRP):
        raise ConfigError(
            f"setting '{setting}': secret file {path} is accessible to other users "
            f"(mode {stat.S_IMODE(info.st_mode):o}); it must be 0600 or 0400"
        )
    value = path.read_text(encoding="utf-8").strip()
    if not value:
        raise ConfigError(f"setting '{setting}': secret file {path} is empty")
    return value


def load_config(path: Path, *, required: bool, environ: Mapping[str, str] | None = None) -> Config:
    """Load the TOML file at `path`; a missing file is an error only when `required`."""
    env = dict(os.environ if environ is None else environ)
    if not path.exists():
        if required:
            raise ConfigError(f"configuration file {path} does not exist (set APPLIANCE_CONFIG to its path)")
        return Config(source="defaults and environment", values={}, environ=env)
    try:
        with path.open("rb") as handle:
            values = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"configuration file {path} is not valid TOML: {exc}") from exc
    return Config(source=str(path), values=values, environ=env)
