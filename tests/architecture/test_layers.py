"""The dependency arrows: ``customers`` ← ``billing`` ← ``revenue`` ← ``portal`` ← ``benchmarks``.

A lower app never reaches a higher one: not by an import (module level or inside a function), not by
a string that names a higher app's model, task, setting or module (``"revenue.CustomerCost"``,
``apps.get_model("billing", …)``, ``"portal.purging_tenant"``), and not by a migration dependency.
Signals are declared by the lower app and connected by the higher one, so they never show here.
"""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ["customers", "billing", "revenue", "portal", "benchmarks"]
RANK = {app: rank for rank, app in enumerate(LAYERS)}
DOTTED = re.compile(r"\b(%s)\.[A-Za-z_][\w.]*" % "|".join(LAYERS))
MIGRATION_NAME = re.compile(r"^\d{4}_\w+$")


def _upward(app: str, target: str | None) -> bool:
    return target in RANK and RANK[target] > RANK[app]


def violations_in(app: str, source: str, filename: str = "<source>") -> list[str]:
    """Every place in ``source`` (a module of ``app``) that names a higher app, as ``file:line: what``."""
    found = []
    tree = ast.parse(source, filename)
    prose = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)}
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in prose:
            # A string naming a higher app: a model label, a task or module path, a setting in SQL.
            names = [m.group(0) for m in DOTTED.finditer(node.value)]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "get_model":
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str) and "." not in first.value:
                names = [first.value]  # apps.get_model("revenue", "Opportunity")
        elif isinstance(node, ast.Tuple) and len(node.elts) == 2 and all(
            isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts
        ):
            label, name = (e.value for e in node.elts)
            if MIGRATION_NAME.match(name):
                names = [label]
        for name in names:
            if _upward(app, name.split(".")[0]):
                found.append(f"{filename}:{node.lineno}: {app} reaches {name!r}")
    return sorted(set(found))


# Frozen history, named with why: a migration that has run cannot be rewritten.
HISTORY = {
    # The finalized-document triggers once read a setting the demo set; 0004 replaced it by the
    # purge mark on the tenant row, and names the old condition to find and replace it.
    "billing/migrations/0002_finalized_documents_are_immutable.py": "portal.purging_tenant",
    "billing/migrations/0004_purge_allows_issued_deletes.py": "portal.purging_tenant",
}


def app_sources():
    for app in LAYERS:
        for path in sorted((ROOT / app).rglob("*.py")):
            yield app, path


def test_no_app_reaches_a_higher_one():
    found = []
    for app, path in app_sources():
        name = str(path.relative_to(ROOT))
        found += [v for v in violations_in(app, path.read_text(), name) if not v.endswith(f"{HISTORY.get(name)!r}")]
    assert found == [], "Lower apps must not reach higher ones:\n" + "\n".join(found)


def test_every_app_of_the_layers_exists():
    assert [app for app in LAYERS if not (ROOT / app / "__init__.py").exists()] == []


@pytest.mark.parametrize(
    "app, source",
    [
        ("customers", "from billing.models import Invoice"),
        ("billing", "def f():\n    import revenue.tasks\n"),
        ("billing", "def f():\n    from portal.celery import app\n"),
        ("customers", "x = models.ForeignKey('revenue.Opportunity', on_delete=models.CASCADE)"),
        ("billing", "apps.get_model('revenue', 'AiUsageDay')"),
        ("billing", "cursor.execute(sql, ['portal.purging_tenant'])"),
        ("billing", "dependencies = [('revenue', '0004_ai_usage_day')]"),
        ("billing", "SQL = \"SELECT current_setting('portal.purging_tenant', true)\""),
        ("revenue", "from benchmarks.harness import timed"),
    ],
)
def test_the_check_sees_each_way_up(app, source):
    assert len(violations_in(app, source)) == 1


@pytest.mark.parametrize(
    "app, source",
    [
        ("billing", "from customers.models import Tenant"),
        ("portal", "from revenue.tasks import send_monthly_report"),
        ("revenue", "dependencies = [('billing', '0003_metric_event_code_and_month_end_runs')]"),
        ("billing", '"""Billing never imports revenue.tasks or portal."""'),
        ("billing", "from . import pricing"),
    ],
)
def test_the_check_lets_the_arrows_point_down(app, source):
    assert violations_in(app, source) == []
