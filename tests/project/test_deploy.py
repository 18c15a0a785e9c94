"""The deployment files hold the pieces a merchant relies on (no Docker engine or Render account
runs here, so they are read and checked): a non-root image with a health check on /healthz, the
port, the /data volume and ``subsbot run``; a Render service that never sleeps, with its disk,
its health check and every required setting, secrets left for the dashboard."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tomllib
from typing import Any

import yaml
from pydantic import SecretStr

from bot.config import Settings, load_settings
from tests.paths import REPO

ROOT = REPO


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", text)
    lines = [line.strip() for line in text.splitlines()]
    out: list[tuple[str, str]] = []
    for line in lines:
        if line and not line.startswith("#"):
            instruction, _, rest = line.partition(" ")
            out.append((instruction.upper(), rest.strip()))
    return out


def instructions(name: str) -> list[str]:
    return [rest for instruction, rest in dockerfile() if instruction == name]


def env_of_image() -> dict[str, str]:
    env: dict[str, str] = {}
    for rest in instructions("ENV"):
        for pair in shlex.split(rest):
            key, _, value = pair.partition("=")
            env[key] = value
    return env


def render() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "render.yaml").read_text())
    assert isinstance(data, dict)
    return data


def required_settings() -> set[str]:
    return {name.upper() for name, f in Settings.model_fields.items() if f.is_required()}


def secret_settings() -> set[str]:
    return {
        name.upper()
        for name, f in Settings.model_fields.items()
        if SecretStr in (f.annotation, *getattr(f.annotation, "__args__", ()))
    }


def test_the_image_runs_as_a_user_without_root_rights() -> None:
    users = instructions("USER")
    assert users, "the image must switch to a non-root user"
    assert users[-1] not in ("root", "0")
    assert any("useradd" in run and users[-1] in run for run in instructions("RUN"))


def test_the_image_checks_health_on_healthz_at_its_port() -> None:
    [check] = instructions("HEALTHCHECK")
    assert "/healthz" in check
    env = env_of_image()
    assert env["PORT"] == "8080"
    assert instructions("EXPOSE") == [env["PORT"]]
    assert env["HOST"] == "0.0.0.0"
    command = json.loads(check.split("CMD", 1)[1])
    assert command[0] == "python"  # the slim image has no curl; urlopen fails on a 503


def test_the_image_keeps_sqlite_on_the_data_volume_and_runs_subsbot() -> None:
    assert json.loads(instructions("VOLUME")[0]) == ["/data"]
    assert env_of_image()["DATABASE_URL"] == "sqlite:////data/subsbot.sqlite3"
    assert json.loads(instructions("CMD")[-1]) == ["subsbot", "run"]
    assert instructions("FROM")[0].startswith("python:3.1") and "slim" in instructions("FROM")[0]


def test_dependencies_are_installed_in_a_layer_of_their_own() -> None:
    steps = dockerfile()
    copies = [i for i, (name, rest) in enumerate(steps) if name == "COPY"]
    first_source = min(i for i in copies if "pyproject" not in steps[i][1])
    install = next(i for i, (name, rest) in enumerate(steps) if "pip install -r" in rest)
    assert steps[copies[0]][1].startswith("pyproject.toml")
    assert copies[0] < install < first_source
    # the requirements the RUN line extracts are exactly the project's dependencies
    code = re.search(r'python -c "(.+?)" >', steps[install][1])
    assert code is not None
    printed = subprocess.run(
        [sys.executable, "-c", code.group(1)],  # as the shell passes it (no escapes in it)
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert [p.replace(" ", "") for p in printed] == [d.replace(" ", "") for d in declared]
    for package in ("payments", "bot", "fakes", "README.md"):
        assert any(rest.startswith(package) for rest in instructions("COPY")), package


def test_secrets_and_local_data_stay_out_of_the_image() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".env", ".git", ".venv", "data", "*.sqlite3"} <= ignored


def test_render_runs_one_always_on_web_service_with_health_and_a_disk() -> None:
    [service] = render()["services"]
    assert service["type"] == "web"
    assert service.get("plan", "free") != "free"  # a free instance sleeps and stops the poller
    assert service["healthCheckPath"] == "/healthz"
    assert service["startCommand"] == "subsbot run"
    env = {e["key"]: e for e in service["envVars"]}
    database = env["DATABASE_URL"]["value"]
    assert database.startswith(f"sqlite:///{service['disk']['mountPath']}/")
    assert "PORT" not in env  # Render sets it; the service binds 0.0.0.0:$PORT


def test_render_lists_every_required_setting_and_leaves_secrets_to_the_dashboard() -> None:
    [service] = render()["services"]
    env = {e["key"]: e for e in service["envVars"]}
    assert required_settings() <= env.keys()
    assert {"WEBHOOK_URL", "WEBHOOK_SECRET"} <= env.keys()
    for key in secret_settings() | {"ADMIN_IDS", "WEBHOOK_URL"}:
        if key in env:
            assert env[key].get("sync") is False and "value" not in env[key], key
    known = {name.upper() for name in Settings.model_fields} | {"PYTHON_VERSION"}
    assert env.keys() <= known, env.keys() - known
    values = {k: str(e["value"]) for k, e in env.items() if "value" in e}
    fake_secrets = {k: "x" for k in required_settings()} | {"ADMIN_IDS": "1"}
    load_settings({**fake_secrets, **{k: v for k, v in values.items() if k != "PYTHON_VERSION"}})
    assert "PostgreSQL" in (ROOT / "render.yaml").read_text()  # the variant, in comments
    assert "fromDatabase" in (ROOT / "render.yaml").read_text()


def test_the_console_script_is_subsbot() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["subsbot"] == "bot.__main__:main"


def test_render_runs_in_a_region_okx_serves_and_states_the_webhook_secret_rule() -> None:
    """OKX refuses some countries (Render's default region among them); the secret comment
    gives the length the app accepts, not Telegram's 1-256."""
    [service] = render()["services"]
    assert service["region"] in {"singapore", "frankfurt"}
    text = (ROOT / "render.yaml").read_text()
    assert "1-256" not in text and "16-256 characters" in text
    assert "RENDER_EXTERNAL_URL" in text
    setup = (ROOT / "docs" / "setup.md").read_text()
    assert "OKX does not serve some countries" in setup and "Singapore or" in setup
