"""Each primitive has one home: money in ``customers.money``, the tenant's calendar in ``customers.periods``,
"send once per recipient" in ``billing.outbox``, deleting a tenant in ``customers.purge``."""

import ast
from pathlib import Path

from tests.architecture.test_layers import LAYERS, ROOT

MONEY_LIBRARIES = {"djmoney", "moneyed"}
CALENDAR_FUNCTIONS = {"tenant_today", "add_months", "month_start", "month_end", "month_bounds", "parse_month",
                      "parse_period", "last_closed_month", "months_between"}
SENDING = {"send_mail", "send_mass_mail"}


def python_files():
    for folder in [*LAYERS, "tests"]:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "migrations" not in path.parts:
                yield str(path.relative_to(ROOT)), ast.parse(path.read_text())


def test_money_libraries_are_imported_only_by_the_money_module():
    found = []
    for name, tree in python_files():
        for node in ast.walk(tree):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            if any(m.split(".")[0] in MONEY_LIBRARIES for m in modules) and name != "customers/money.py":
                found.append(f"{name}:{node.lineno}")
    assert found == []


def test_the_calendar_is_defined_only_in_customers_periods():
    found = [
        f"{name}:{node.lineno} {node.name}"
        for name, tree in python_files() if name != "customers/periods.py" and not name.startswith("tests/")
        for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and node.name in CALENDAR_FUNCTIONS
    ]
    assert found == []


def test_emails_go_out_through_the_outbox():
    senders = sorted({
        name for name, tree in python_files() if not name.startswith("tests/")
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and (
            getattr(node.func, "attr", None) == "send" and not node.args and name not in {"billing/outbox.py"}
            and isinstance(node.func.value, ast.Name) and node.func.value.id == "message"
            or getattr(node.func, "id", getattr(node.func, "attr", None)) in SENDING
        )
    })
    assert senders == []


def _text(node) -> str:
    """A string literal's text; an f-string's with ``{}`` for each value."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    return ""


def _deletes_a_whole_tenant(text: str) -> bool:
    # "DELETE FROM <table> WHERE tenant_id = %s" with nothing narrowing it: a tenant's rows, all of them.
    return "DELETE FROM" in text and text.rstrip().endswith("WHERE tenant_id = %s") or "FROM customers_tenant WHERE" in text


def test_deleting_a_tenant_is_written_once():
    found = sorted(
        f"{name}:{node.lineno}" for name, tree in python_files() if name != "customers/purge.py"
        and not name.startswith("tests/architecture/")
        for node in ast.walk(tree) if _deletes_a_whole_tenant(_text(node))
    )
    assert found == []


def test_the_checks_see_what_they_look_for():
    # Each check above, fed the thing it forbids, finds it (so a quiet check is not a blind one).
    tree = ast.parse("import moneyed\ndef add_months(d, n): ...\nsend_mail('s', 'b', 'f', ['t'])\n")
    assert any(isinstance(n, ast.Import) and n.names[0].name in MONEY_LIBRARIES for n in ast.walk(tree))
    assert any(isinstance(n, ast.FunctionDef) and n.name in CALENDAR_FUNCTIONS for n in ast.walk(tree))
    assert any(isinstance(n, ast.Call) and getattr(n.func, "id", None) in SENDING for n in ast.walk(tree))
    assert _deletes_a_whole_tenant("DELETE FROM billing_invoice WHERE tenant_id = %s")
    assert _deletes_a_whole_tenant(_text(ast.parse('f"DELETE FROM {table} WHERE tenant_id = %s"').body[0].value))
    assert _deletes_a_whole_tenant("DELETE FROM customers_tenant WHERE id = %s")
    assert not _deletes_a_whole_tenant("DELETE FROM billing_usageevent WHERE tenant_id = %s AND idempotency_key LIKE %s")
    assert Path(ROOT / "customers" / "purge.py").exists()
