"""The production shape: compose file valid, deploy checks clean, safe defaults."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _production_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update(
        DJANGO_SETTINGS_MODULE="portal.settings",
        DJANGO_SECRET_KEY="a-long-random-production-secret-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFGH",
        DJANGO_ALLOWED_HOSTS="portal.example.com",
        DJANGO_ENV_FILE="",  # a production host: no checkout .env with its generated key
    )
    env.update(extra)
    return env


def _manage(*args, env):
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_compose_file_is_valid_and_has_the_production_services():
    compose = shutil.which("docker-compose")
    assert compose, "docker-compose is installed by bin/setup"
    result = subprocess.run(
        [compose, "-f", str(ROOT / "docker-compose.yml"), "config"],
        env={**os.environ, "DJANGO_SECRET_KEY": "x"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert set(services) == {"web", "worker", "beat", "postgres", "redis", "mail"}
    assert services["worker"]["command"].split()[:4] == ["celery", "-A", "portal", "worker"]
    assert services["beat"]["command"].split()[:4] == ["celery", "-A", "portal", "beat"]


def test_deploy_checks_are_clean_in_production_mode():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=_production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    env = _production_env()
    del env["DJANGO_SECRET_KEY"]
    result = _manage("check", env=env)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


@pytest.mark.parametrize("name", ["DEBUG", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_SSL_REDIRECT"])
def test_production_defaults_are_safe(name):
    code = f"from django.conf import settings; print(settings.{name})"
    result = _manage("shell", "-c", code, env=_production_env())
    expected = "False" if name == "DEBUG" else "True"
    assert result.stdout.strip().splitlines()[-1] == expected, result.stderr
