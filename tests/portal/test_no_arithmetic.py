"""The dashboards and views show figures; they do not compute them.

Every figure on a staff dashboard or portal page comes from a selector (``revenue.selectors``,
``revenue.economics``, ``billing``); ``portal/dashboards/`` and ``portal/views/`` only pick, label,
round and format. This walks their source and fails on arithmetic (``+ - * / // ** %``, augmented
assignment with those, and ``sum()``), except for what is not arithmetic on figures:

- joining strings (an operand is a string literal, an f-string or ``_("...")``) and ``"..." % {...}``
  interpolation;
- building lists of columns or rows (an operand is a list or tuple display or a comprehension);
- calendar steps with ``timedelta``/``relativedelta`` (the date helpers are the selectors' own);
- expressions of literals and UPPER_CASE constants only (worked out once, like a literal).

Anything else must be listed in ALLOWED with the reason; a listed entry that no longer occurs fails
too, so the list only shrinks.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECKED = [ROOT / "portal" / "dashboards", ROOT / "portal" / "views"]
ARITHMETIC = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Pow, ast.Mod)
CALENDAR_STEPS = {"timedelta", "relativedelta"}
STRING_CALLS = {"_", "gettext", "str", "format_decimal", "format_date", "reverse"}

# (file relative to the repository, enclosing function, the expression) → why it stays.
ALLOWED = {
    ("portal/dashboards/panels.py", "percent", "ratio * 100"):
        "Display.percent scales a ratio to the number printed before the % sign; formatting, not a figure.",
    ("portal/views/customer_portal.py", "invoice_detail", "invoice.subtotal - invoice.discount_total"):
        "The invoice page's net amount; billing (another app's owner) has no selector or field for it yet.",
}


def _is_constant(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.Name):
        return node.id.isupper()
    if isinstance(node, ast.UnaryOp):
        return _is_constant(node.operand)
    if isinstance(node, ast.BinOp):
        return _is_constant(node.left) and _is_constant(node.right)
    return False


def _is_text(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.IfExp):
        return _is_text(node.body) and _is_text(node.orelse)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mod):
        return _is_text(node.left) or _is_text(node.right)
    if isinstance(node, ast.Call):
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        return name in STRING_CALLS or (isinstance(func, ast.Attribute) and _is_text(func.value))
    return False


def _is_sequence(node: ast.AST) -> bool:
    return isinstance(node, ast.List | ast.Tuple | ast.ListComp)


def _is_calendar_step(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in CALENDAR_STEPS


def _allowed_by_rule(op: ast.operator, left: ast.AST, right: ast.AST) -> bool:
    if _is_constant(left) and _is_constant(right):
        return True
    if isinstance(op, ast.Mod):
        return _is_text(left)
    if isinstance(op, ast.Add):
        if _is_text(left) or _is_text(right) or _is_sequence(left) or _is_sequence(right):
            return True
    return isinstance(op, ast.Add | ast.Sub) and (_is_calendar_step(left) or _is_calendar_step(right))


def arithmetic_in(source: str, filename: str = "<source>") -> list[tuple[str, str, int]]:
    """``(enclosing function, expression, line)`` of every arithmetic the rules above do not allow."""
    tree = ast.parse(source, filename)
    found = []

    def visit(node: ast.AST, function: str) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            function = getattr(node, "name", function)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ARITHMETIC):
            if not _allowed_by_rule(node.op, node.left, node.right):
                found.append((function, ast.unparse(node), node.lineno))
        elif isinstance(node, ast.AugAssign) and isinstance(node.op, ARITHMETIC):
            if not _allowed_by_rule(node.op, node.target, node.value):
                found.append((function, ast.unparse(node), node.lineno))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "sum":
            found.append((function, ast.unparse(node), node.lineno))
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    visit(tree, "<module>")
    return found


def _checked_files() -> list[Path]:
    return sorted(path for folder in CHECKED for path in folder.rglob("*.py"))


def test_dashboards_and_views_do_no_arithmetic_on_figures():
    unexpected, seen = [], set()
    for path in _checked_files():
        relative = path.relative_to(ROOT).as_posix()
        for function, expression, line in arithmetic_in(path.read_text(), relative):
            key = (relative, function, expression)
            if key in ALLOWED:
                seen.add(key)
            else:
                unexpected.append(f"{relative}:{line} in {function}(): {expression}")
    assert unexpected == [], "Compute these in a selector and show its result:\n" + "\n".join(unexpected)
    assert set(ALLOWED) - seen == set(), "Allowed arithmetic that no longer occurs; drop it from ALLOWED."


def test_the_checked_folders_hold_the_dashboards_and_views():
    names = {path.relative_to(ROOT).as_posix() for path in _checked_files()}
    assert {"portal/dashboards/revenue.py", "portal/views/dashboards.py", "portal/views/customer_portal.py"} <= names


@pytest.mark.parametrize(
    "source",
    [
        "def page(r):\n    return 12 * r['mrr_end']",
        "def page(r):\n    return r['mrr_end'] - r['mrr_start']",
        "def page(mix, earned):\n    return mix['usage'] / earned",
        "def page(a, b):\n    return a['committed'] + b",
        "def page(rows):\n    return sum(r['mrr'] for r in rows)",
        "def page(rows):\n    total = 0\n    for r in rows:\n        total += r['mrr']",
        "def page(p):\n    return p // 100",
    ],
)
def test_arithmetic_on_figures_is_flagged(source):
    assert len(arithmetic_in(source)) == 1


@pytest.mark.parametrize(
    "source",
    [
        "def page(text):\n    return \"'\" + text",
        "def page(show, v):\n    return show.number(v) + '×'",
        "def page(request):\n    return reverse('x') + (f'?{request.GET}' if request.GET else '')",
        "def page(count):\n    return _('%(count)s deals') % {'count': count}",
        "def page(a, b):\n    return [a] + [c for c in b]",
        "def page(day, n):\n    return day - timedelta(days=n)",
        "def page(last):\n    return add_months(last, -(DEFAULT_MONTHS - 1))",
    ],
)
def test_text_lists_calendar_steps_and_constants_are_not_flagged(source):
    assert arithmetic_in(source) == []
