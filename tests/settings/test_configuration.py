"""Production configuration: every wrong or missing value stops start-up naming the setting, and a complete
production config passes `manage.py check --deploy` with no warning."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def start(config: Path | None, *args: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_") and k != "DATABASE_URL"}
    env["DJANGO_SETTINGS_MODULE"] = "appliance.settings"
    if config is not None:
        env["APPLIANCE_CONFIG"] = str(config)
    env.update(extra_env or {})
    command = list(args) or ["check"]
    return subprocess.run(
        [sys.executable, "manage.py", *command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def secret_file(tmp_path: Path, name: str, value: str, mode: int = 0o600) -> Path:
    path = tmp_path / name
    path.write_text(value)
    path.chmod(mode)
    return path


@pytest.fixture
def production_config(tmp_path: Path):
    """Write a complete production config; return a function that writes it with overrides."""
    key = secret_file(tmp_path, "secret_key", "k" * 20 + "Zq8#v!Lm2@pR7$wX4%tY9^uB3&nC6*eD1(" + "a" * 20)
    data = tmp_path / "data"
    data.mkdir()

    def write(**sections: dict[str, object] | None) -> Path:
        config: dict[str, dict[str, object] | None] = {
            "appliance": {"mode": "production", "id": "appliance.test.example"},
            "paths": {"data_dir": str(data), "key_dir": str(tmp_path / "keys")},
            "http": {
                "allowed_hosts": ["labeling.example.mil"],
                "csrf_trusted_origins": ["https://labeling.example.mil"],
            },
            "database": {"url": "postgres://appliance@127.0.0.1:5432/appliance"},
            "secret_key_file": None,
        }
        config.update(sections)
        lines = [f'secret_key_file = "{key}"'] if config.pop("secret_key_file", None) is None else []
        for section, values in config.items():
            if values is None:
                continue
            lines.append(f"[{section}]")
            for name, value in values.items():
                rendered = "[" + ", ".join(f'"{v}"' for v in value) + "]" if isinstance(value, list) else f'"{value}"'
                lines.append(f"{name} = {rendered}")
        path = tmp_path / "appliance.toml"
        path.write_text("\n".join(lines) + "\n")
        return path

    return write


def test_a_complete_production_config_passes_check_deploy(production_config):
    """V-222596, V-222575, V-222576: TLS-only cookies, HSTS, secure headers — Django's deploy checks find nothing."""
    result = start(production_config(), "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_it_refuses_an_explicit_config_file_that_does_not_exist(tmp_path):
    result = start(tmp_path / "missing.toml")
    assert result.returncode != 0
    assert "missing.toml does not exist" in result.stderr


def test_it_refuses_invalid_toml(tmp_path):
    path = tmp_path / "appliance.toml"
    path.write_text("[appliance\nmode = ")
    result = start(path)
    assert result.returncode != 0
    assert "is not valid TOML" in result.stderr


def test_it_names_a_missing_required_setting(production_config):
    result = start(production_config(database=None))
    assert result.returncode != 0
    assert "'database.url' is required" in result.stderr


def test_it_names_a_wrong_value(production_config):
    result = start(production_config(appliance={"mode": "staging"}))
    assert result.returncode != 0
    assert "'appliance.mode' must be 'development' or 'production'" in result.stderr


def test_it_refuses_a_password_inside_the_database_url(production_config):
    result = start(production_config(database={"url": "postgres://app:hunter2@db/appliance"}))
    assert result.returncode != 0
    assert "must not contain a password" in result.stderr
    assert "hunter2" not in result.stderr  # a secret never reaches an error message (V-222444)


def test_secrets_come_only_from_files(production_config, tmp_path):
    config = production_config()
    config.write_text(config.read_text().replace("secret_key_file", "secret_key", 1))
    result = start(config)
    assert result.returncode != 0
    assert "'secret_key' must not hold the secret itself" in result.stderr


def test_it_refuses_a_secret_file_others_can_read(production_config, tmp_path):
    config = production_config()
    (tmp_path / "secret_key").chmod(0o644)
    result = start(config)
    assert result.returncode != 0
    assert "secret_key_file" in result.stderr
    assert "accessible to other users" in result.stderr


def test_it_names_a_missing_key_file(production_config, tmp_path):
    config = production_config()
    (tmp_path / "secret_key").unlink()
    result = start(config)
    assert result.returncode != 0
    assert "'secret_key_file': cannot read secret file" in result.stderr


def test_environment_overrides_the_file(production_config):
    result = start(production_config(), extra_env={"APPLIANCE_APPLIANCE_MODE": "bogus"})
    assert result.returncode != 0
    assert "got 'bogus'" in result.stderr


def test_a_broken_policy_stops_start_up_naming_the_file(production_config, tmp_path):
    policy = tmp_path / "policies"
    policy.mkdir()
    for source in (ROOT / "policies").glob("*.toml"):
        (policy / source.name).write_text(source.read_text())
    (policy / "security.toml").write_text(
        (policy / "security.toml").read_text().replace("min_length = 15", "min_length = 8")
    )
    config = production_config()
    config.write_text(config.read_text() + "\n")
    result = start(config, extra_env={"APPLIANCE_PATHS_POLICY_DIR": str(policy)})
    assert result.returncode != 0
    assert "security.toml: 'password.min_length' must be at least 15" in result.stderr
