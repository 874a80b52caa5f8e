"""Importing a month's cost to serve per customer: rows from a CSV file or an API body, validated whole.

A row is ``{"customer": <external_ref>, "month": "YYYY-MM", "amount": "1234.50", "note": "…"}``
(``note`` optional). Row numbers in messages are what the person who made the file sees: an
API list counts from 1 (its first element); a CSV counts the header as row 1, so its first data
row is row 2 (``CSV_FIRST_ROW``) and a blank line still takes its row number, as in a spreadsheet.
"""

import csv
import io
import re
from datetime import date
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction

from customers.models import Customer, Tenant
from customers.money import minor_unit, minor_unit_places, money_round
from customers.periods import PeriodError, parse_month
from revenue.models import CustomerCost

__all__ = ["CSV_COLUMNS", "CSV_FIRST_ROW", "MAX_CSV_BYTES", "MAX_ROWS", "customer_costs_import", "rows_from_csv"]

MAX_ROWS = 10_000
MAX_CSV_BYTES = 5 * 1024 * 1024
CSV_COLUMNS = ("customer", "month", "amount", "note")
REQUIRED = ("customer", "month", "amount")
CSV_FIRST_ROW = 2
NOTE_LENGTH = CustomerCost._meta.get_field("note").max_length
# The column holds 18 digits, 2 of them decimals.
MAX_WHOLE_DIGITS = CustomerCost._meta.get_field("amount").max_digits - CustomerCost._meta.get_field("amount").decimal_places
AMOUNT_PATTERN = re.compile(r"^-?(\d+(\.\d*)?|\.\d+)$")


def customer_costs_import(
    *, tenant: Tenant, rows: list[dict], source: str = CustomerCost.Source.IMPORTED, first_row: int = 1
) -> dict[str, int]:
    """Write one month's cost per customer for many customers at once: all rows or none.

    Every row is checked before anything is written: known fields only, ``customer`` an
    ``external_ref`` of a customer of ``tenant`` (another tenant's ref is reported exactly like
    one nobody has), ``month`` as ``YYYY-MM``, ``amount`` a non-negative decimal in whole cents
    ("12.5" and "12.500" are 12.50; "12.505" is refused) with at most 16 digits before the point,
    ``note`` at most 200 characters, each (customer, month) once. ``first_row`` is the number of
    ``rows[0]`` in the messages (``CSV_FIRST_ROW`` for a CSV). An import of nothing or of more
    than ``MAX_ROWS`` rows is refused too.

    A row replaces the customer-month's existing cost of the same ``source`` (its amount and its
    note: a row without a note clears it); costs of the other source are left alone.

    Returns ``{"created": n, "updated": n, "unchanged": n}``; ``unchanged`` counts rows identical
    to what was stored. Raises ``ValidationError`` whose ``messages`` are every problem found,
    each starting with ``Row <n>:`` where it concerns one row; nothing is written then.
    Queries: the customers, the existing costs, and the writes, in one transaction.
    """
    if source not in CustomerCost.Source.values:
        raise ValidationError(f'source must be one of {", ".join(CustomerCost.Source.values)} (got {str(source)[:20]!r}).')
    if not rows:
        raise ValidationError("The import has no rows: nothing to do.")
    if len(rows) > MAX_ROWS:
        raise ValidationError(f"The import has {len(rows)} rows; import at most {MAX_ROWS} at once.")

    errors: list[tuple[int, str]] = []  # (row number, message)
    parsed = [_parse_row(row, first_row + index, errors, tenant.reporting_currency) for index, row in enumerate(rows)]

    refs = {row["customer"] for row in parsed if row and row["customer"]}
    customer_ids = dict(Customer.objects.for_tenant(tenant).filter(external_ref__in=refs).values_list("external_ref", "pk"))
    seen: dict[tuple[str, date], int] = {}
    for row in parsed:
        if not row:
            continue
        if row["customer"] and row["customer"] not in customer_ids:
            errors.append((row["number"], f'Row {row["number"]}: no customer "{row["customer"][:64]}" in this tenant.'))
        if row["customer"] and row["month"]:
            key = (row["customer"], row["month"])
            if key in seen:
                errors.append((row["number"], (
                    f'Row {row["number"]}: customer "{row["customer"][:64]}" has a cost for {row["month"]:%Y-%m} '
                    f"on row {seen[key]} already; give each customer-month once."
                )))
            else:
                seen[key] = row["number"]
    if errors:
        # Messages in row order, whichever check found them.
        raise ValidationError([message for _, message in sorted(errors, key=lambda error: error[0])])

    wanted = {(customer_ids[row["customer"]], row["month"]): row for row in parsed}
    costs = CustomerCost.objects.for_tenant(tenant)
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    with transaction.atomic():
        stored = {
            (cost.customer_id, cost.month): cost
            for cost in costs.filter(
                source=source, customer_id__in={customer for customer, _ in wanted}, month__in={month for _, month in wanted}
            )
        }
        writes = []
        for (customer_id, month), row in wanted.items():
            current = stored.get((customer_id, month))
            if current is not None and (current.amount, current.note) == (row["amount"], row["note"]):
                counts["unchanged"] += 1
                continue
            counts["created" if current is None else "updated"] += 1
            writes.append(CustomerCost(
                tenant=tenant, customer_id=customer_id, month=month, amount=row["amount"], note=row["note"], source=source
            ))
        # An upsert: a row that a concurrent import created meanwhile is replaced instead of failing this one.
        costs.bulk_create(
            writes, batch_size=1000, update_conflicts=True,
            unique_fields=["tenant", "customer", "month", "source"], update_fields=["amount", "note"],
        )
    return counts


def _parse_row(row, number: int, errors: list[tuple[int, str]], currency: str) -> dict | None:
    """The row's values cleaned (``customer``/``month`` None when unusable), its problems added to ``errors``."""
    if not isinstance(row, dict):
        errors.append((number, f"Row {number}: give an object with customer, month, amount and optionally note."))
        return None
    problems = []
    unknown = [str(name) for name in row if name not in CSV_COLUMNS]
    if unknown:
        problems.append(
            f'unknown field{"s" if len(unknown) > 1 else ""} {", ".join(f"{n[:40]!r}" for n in unknown)}; '
            f'the fields are {", ".join(CSV_COLUMNS)}.'
        )
    values = {}
    for name in CSV_COLUMNS:
        value = row.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool) and name == "amount":
            value = str(value)
        if value is not None and not isinstance(value, str):
            problems.append(f"{name} must be text.")
            value = None
        elif value is not None and "\x00" in value:  # PostgreSQL text cannot hold it
            problems.append(f"{name} contains a NUL character.")
            value = None
        values[name] = value.strip() if value is not None else ""
    if not problems and not any(values.values()):
        errors.append((number, f"Row {number}: the row is empty; fill it in or delete it."))
        return None
    missing = [name for name in REQUIRED if not values[name] and not any(p.startswith(f"{name} ") for p in problems)]
    if missing:
        names = " and ".join([", ".join(missing[:-1]), missing[-1]] if len(missing) > 1 else missing)
        problems.append(f'{names} {"is" if len(missing) == 1 else "are"} missing.')
    month = _month(values["month"], problems) if values["month"] else None
    amount = _amount(values["amount"], problems, currency) if values["amount"] else None
    if len(values["note"]) > NOTE_LENGTH:
        problems.append(f"note is {len(values['note'])} characters long; at most {NOTE_LENGTH}.")
    errors.extend((number, f"Row {number}: {problem}") for problem in problems)
    return {"number": number, "customer": values["customer"] or None, "month": month, "amount": amount, "note": values["note"]}


def _month(text: str, problems: list[str]) -> date | None:
    try:
        return parse_month(text)
    except PeriodError:
        problems.append(f'month "{text[:20]}" is not a month; write it as YYYY-MM, e.g. 2026-03.')
        return None


def _amount(text: str, problems: list[str], currency: str) -> Decimal | None:
    shown = text[:30]
    if not AMOUNT_PATTERN.match(text):
        problems.append(f'amount "{shown}" is not a number; write it like 1234.50 (no thousands separators).')
        return None
    amount = Decimal(text)  # the pattern admits plain decimals only
    if amount < 0:
        problems.append(f'amount "{shown}" is negative; a cost is 0 or more.')
    elif amount != money_round(amount, currency):
        places = minor_unit_places(currency)
        smallest = "cents" if places == 2 else f"units of {minor_unit(currency)} {currency}"
        problems.append(f'amount "{shown}" has more than {places} decimals; give whole {smallest}.')
    elif amount.adjusted() >= MAX_WHOLE_DIGITS:
        problems.append(f'amount "{shown}" is too large: at most {MAX_WHOLE_DIGITS} digits before the decimal point.')
    else:
        return money_round(amount, currency)
    return None


def rows_from_csv(text_or_file) -> list[dict]:
    """The rows of a CSV of costs, as ``customer_costs_import`` takes them (row ``CSV_FIRST_ROW`` first).

    Accepts text, bytes or a file (an upload) of UTF-8, with or without a byte-order mark, at most
    ``MAX_CSV_BYTES``. The first row is the header: ``customer``, ``month``, ``amount`` and
    optionally ``note``, in any order (case and surrounding spaces ignored). Values are kept as
    text; the import checks them. A blank line keeps its row number (the import reports it);
    blank lines at the end are dropped. Raises ``ValidationError`` for a file that is too big,
    not text, not comma-separated, has a wrong header, cells beyond the header, or more than
    ``MAX_ROWS`` rows.
    """
    text = _decode(text_or_file)
    if not text.strip():
        raise ValidationError("The file is empty; the first row must be the header customer,month,amount,note.")
    try:
        records = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise ValidationError(f"This is not a readable CSV file ({exc}).") from None
    header = [cell.strip().lower() for cell in records[0]]
    while header and not header[-1]:  # trailing commas after the last column name
        header.pop()
    if len(header) == 1 and ";" in header[0]:
        raise ValidationError('The file is separated by semicolons; save it as "CSV UTF-8 (comma-delimited)".')
    _check_header(header)

    while records and not any(cell.strip() for cell in records[-1]):
        records.pop()
    body = records[1:]
    if len(body) > MAX_ROWS:
        raise ValidationError(f"The file has {len(body)} rows of costs; import at most {MAX_ROWS} at once.")
    rows, errors = [], []
    for number, cells in enumerate(body, start=CSV_FIRST_ROW):
        extra = [cell for cell in cells[len(header) :] if cell.strip()]
        if extra:
            errors.append(f"Row {number}: {len(cells)} cells but the header has {len(header)} columns.")
        rows.append({name: (cells[i] if i < len(cells) else "") for i, name in enumerate(header)})
    if errors:
        raise ValidationError(errors)
    return rows


def _decode(text_or_file) -> str:
    # A file is read no further than one byte past the limit.
    data = text_or_file if isinstance(text_or_file, str | bytes) else text_or_file.read(MAX_CSV_BYTES + 1)
    size = len(data.encode() if isinstance(data, str) else data)
    if size > MAX_CSV_BYTES:
        raise ValidationError(f"The file is larger than {MAX_CSV_BYTES // (1024 * 1024)} MB; split it.")
    if isinstance(data, bytes):
        if b"\x00" in data:
            raise ValidationError("This is not a CSV text file; save the sheet as CSV UTF-8.")
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationError("The file is not UTF-8 text; save the sheet as CSV UTF-8.") from None
    if "\x00" in data:
        raise ValidationError("This is not a CSV text file; save the sheet as CSV UTF-8.")
    return data.removeprefix("\ufeff")


def _check_header(header: list[str]) -> None:
    expected = ",".join(CSV_COLUMNS)
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        raise ValidationError(
            f'The first row must be the header {expected} (note optional); missing column{"s" if len(missing) > 1 else ""} '
            f'{", ".join(missing)}.'
        )
    unknown = [name for name in header if name not in CSV_COLUMNS]
    if unknown:
        raise ValidationError(
            f'Unknown column{"s" if len(unknown) > 1 else ""} {", ".join(repr(n[:40]) for n in unknown)}; '
            f"the columns are {expected}."
        )
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        plural = len(repeated) > 1
        raise ValidationError(
            f'The column{"s" if plural else ""} {", ".join(repeated)} appear{"" if plural else "s"} twice in the header.'
        )
