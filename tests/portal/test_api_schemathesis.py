"""schemathesis over the OpenAPI schema: every operation answers as the schema says it does.

Each operation of ``/api/schema/`` is sent, with a tenant API key, through the Django WSGI app in
this process (schemathesis' WSGI transport: no socket, no server thread, the test's transaction):

- ``MAX_EXAMPLES`` generated valid requests, and as many that break the schema (derandomized);
- as many valid ones again about a real object of the tenant, when the path names one;
- one request per top-level body property with a value of the wrong type (schemathesis' coverage
  cases): a plain value where money is an object was a KeyError, a 500.

Every answer must pass schemathesis' checks: no 5xx, a status code the schema documents, a body
and a content type the schema describes for that status, and no schema-breaking request accepted.
Each request runs in a savepoint that is rolled back, so every request sees the same small world.
The failures of all operations are collected and reported together, with a curl line for each.
"""

import time
from collections import Counter
from contextlib import contextmanager

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import load_all_checks, not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.meta import CoverageScenario
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from customers.models import TenantAPIKey
from tests.billing.document_builders import build_credit_note, build_invoice
from tests.customers.factories import ContactFactory, ContractFactory, ContractLineFactory, CustomerFactory
from tests.revenue.factories import OpportunityFactory

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

MAX_EXAMPLES = 5  # generated requests per operation and pass
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
# Operations left out, label → the reason. None is: every operation can be asked safely.
EXCLUDED: dict[str, str] = {}


@contextmanager
def in_process_requests():
    """Django's test client does this too: a request must not close the test's connection."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def api_world(tenant_a, tenant_b, unscoped):
    """Tenant A's API key and the ids of one object of each kind, for paths that name an object."""
    with unscoped():
        customer = CustomerFactory(tenant=tenant_a, name="Alpha Inc", external_ref="alpha", currency="USD")
        contact = ContactFactory(tenant=tenant_a, customer=customer)
        contract = ContractFactory(tenant=tenant_a, customer=customer)
        ContractLineFactory(tenant=tenant_a, contract=contract)
        opportunity = OpportunityFactory(tenant=tenant_a, customer=customer)
        invoice = build_invoice(customer)
        credit_note = build_credit_note(invoice)
        CustomerFactory(tenant=tenant_b, name="Beta AB", external_ref="beta")
        ids = {
            "customers": customer.pk, "contacts": contact.pk, "contracts": contract.pk,
            "opportunities": opportunity.pk, "invoices": invoice.pk, "credit-notes": credit_note.pk,
            "roi": customer.pk, "invoice-lines": invoice.lines.first().pk,
        }
    _, raw_key = TenantAPIKey.objects.create_key(tenant=tenant_a, name="schemathesis")
    return raw_key, ids


def known_ids(operation, ids):
    """The path parameters of ``operation`` set to a real object of tenant A, or None if it names none."""
    parameters = {}
    for parameter in operation.path_parameters:
        segments = operation.path.split("/")
        before = segments[segments.index("{" + parameter.name + "}") - 1]
        if before not in ids:
            return None
        parameters[parameter.name] = ids[before]
    return parameters or None


def test_every_operation_answers_as_the_schema_says(api_world):
    load_all_checks()
    raw_key, ids = api_world
    headers = {"Authorization": f"Api-Key {raw_key}"}
    app = WSGIHandler()
    failures, requests, statuses, kinds = [], Counter(), Counter(), Counter()
    with in_process_requests():
        schema = schemathesis.openapi.from_wsgi("/api/schema/", app)
        operations = [result.ok() for result in schema.get_all_operations()]
        started = time.monotonic()
        for operation in operations:
            if operation.label in EXCLUDED:
                continue
            runs = [(GenerationMode.POSITIVE, None), (GenerationMode.NEGATIVE, None)]
            if known := known_ids(operation, ids):  # also valid requests about an object that exists
                runs.append((GenerationMode.POSITIVE, known))
            for mode, path_parameters in runs:
                failures.extend(_run(operation, mode, path_parameters, headers, requests, statuses, kinds))
            for case in wrong_type_cases(schema, operation):
                failures.extend(_send(case, operation, headers, requests, statuses, kinds))
        elapsed = time.monotonic() - started
    print(
        f"\nschemathesis: {len(operations)} operations, {sum(requests.values())} requests in {elapsed:.1f} s, "
        f"statuses {dict(sorted(statuses.items()))}, {len(failures)} failures {dict(kinds)}"
    )
    assert not failures, "\n\n".join(failures[:40])


def wrong_type_cases(schema, operation):
    """schemathesis' coverage cases that give one top-level body property a value of the wrong type,
    one per property: deterministic, and what a plain value for a money object is (``"amount": 5``)."""
    seen = set()
    config = schema.config.generation_for(operation=operation)
    for case in schema.iter_coverage_cases(operation, generation_modes=[GenerationMode.NEGATIVE], generation_config=config):
        data = case.meta.phase.data
        if (
            getattr(data, "scenario", None) == CoverageScenario.INCORRECT_TYPE
            and data.parameter_location == ParameterLocation.BODY
            and "->" not in data.description  # a top-level property, not one nested in it
            and data.description not in seen
        ):
            seen.add(data.description)
            yield case


def _send(case, operation, headers, requests, statuses, kinds):
    """Send one case in a savepoint that is rolled back; its failures (one report per check failed)."""
    with transaction.atomic():
        response = case.call(headers=headers)
        transaction.set_rollback(True)
    requests[operation.label] += 1
    statuses[response.status_code] += 1
    try:
        case.validate_response(response, checks=CHECKS, headers=headers)
    except FailureGroup as exc:
        kinds[type(exc.exceptions[0]).__name__] += 1
        return [f"{operation.label} [{case.meta.phase.data.description if case.meta else ''}]: {exc}"]
    return []


def _run(operation, mode, path_parameters, headers, requests, statuses, kinds):
    """``MAX_EXAMPLES`` generated cases of ``mode``; one report per distinct failure."""
    failures, seen = [], set()

    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path_parameters))
    def check(case):
        for failure in _send(case, operation, headers, requests, statuses, kinds):
            key = failure[:200]
            if key not in seen:
                seen.add(key)
                failures.append(failure)

    try:
        check()
    except Unsatisfiable:  # nothing in this operation can be made invalid (no parameters, no body)
        assert mode == GenerationMode.NEGATIVE, f"{operation.label}: no valid request can be generated"
    return failures
