"""``GET /api/v1/accounting/journal/?month=YYYY-MM``: a month's journal as a file.

``file_format`` is ``sie4`` or ``csv`` (default: the tenant's account plan's; not ``format``,
which DRF keeps for content negotiation). API keys, finance and
owners may download it; other roles get 403. A month that is not ``YYYY-MM`` or an unknown format
is a 400 naming the parameter; a document in a currency without an exchange rate (SIE 4 is in the
reporting currency) is a 409 naming the currency and day. Only the key's or member's tenant is read.
"""

from django.http import HttpResponse
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.models import Invoice
from customers.periods import PeriodError, parse_month
from customers.roles import role_can_edit
from revenue.accounting import account_plan_for, journal_csv, journal_sie4
from revenue.models import AccountPlan
from revenue.selectors.common import MissingExchangeRate


def may_export(request) -> bool:
    """API keys, and staff whose role may edit invoices (finance, owners)."""
    if getattr(request, "api_key", None) is not None:
        return True
    membership = getattr(request, "membership", None)
    return membership is not None and role_can_edit(membership.role, Invoice)


def journal_response(*, tenant, month, journal_format: str) -> HttpResponse:
    """The journal file as a download; raises MissingExchangeRate for SIE 4."""
    if journal_format == AccountPlan.Format.SIE4:
        body = journal_sie4(tenant=tenant, month=month)
        content_type, suffix = "text/plain; charset=IBM437", "se"
    else:
        body = journal_csv(tenant=tenant, month=month).encode("utf-8")
        content_type, suffix = "text/csv; charset=utf-8", "csv"
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="journal-{tenant.slug}-{month:%Y-%m}.{suffix}"'
    return response


class JournalView(APIView):
    @extend_schema(
        summary="A month's invoices, credit notes, payments and refunds as a balanced journal (SIE 4 or CSV)",
        parameters=[
            OpenApiParameter("month", {"type": "string", "pattern": r"^\d{4}-\d{2}$"}, required=True, description="YYYY-MM"),
            OpenApiParameter("file_format", {"type": "string", "enum": list(AccountPlan.Format.values)},
                             description="Default: the account plan's format."),
        ],
        responses={
            (200, "text/csv"): OpenApiTypes.BINARY,
            (200, "text/plain"): OpenApiTypes.BINARY,
            400: OpenApiResponse(description="month or file_format is not as described (`detail` names it)."),
            403: OpenApiResponse(description="Your role may not export the books."),
            409: OpenApiResponse(description="A document's currency has no exchange rate for its day."),
        },
    )
    def get(self, request):
        if not may_export(request._request):
            return Response({"detail": "Only finance, owners and API keys may export the journal."}, status=403)
        tenant = request.tenant
        raw_month = request.query_params.get("month")
        if not raw_month:
            return Response({"detail": "Give month as YYYY-MM."}, status=400)
        try:
            month = parse_month(raw_month)
        except PeriodError as exc:
            return Response({"detail": " ".join(exc.messages)}, status=400)
        journal_format = request.query_params.get("file_format") or account_plan_for(tenant=tenant).journal_format
        if journal_format not in AccountPlan.Format.values:
            return Response({"detail": f"file_format must be one of {', '.join(AccountPlan.Format.values)} (got {journal_format[:20]!r})."},
                            status=400)
        try:
            return journal_response(tenant=tenant, month=month, journal_format=journal_format)
        except MissingExchangeRate as exc:
            return Response({"detail": str(exc)}, status=409)


def url_patterns():
    return [path("accounting/journal/", JournalView.as_view(), name="accounting-journal")]
