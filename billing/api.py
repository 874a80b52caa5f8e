"""REST endpoints for invoices and credit notes: read by members and API keys of the tenant.

Documents are never written through the API: PUT, PATCH and DELETE are 405. Finance staff (roles
that may edit billing) move an invoice with POST actions, ``finalize``, ``void`` and ``mark-paid``;
a move the invoice's status does not allow is 409, and so is finalizing an invoice whose period
is still running without ``{"close_early": true}``. API keys only read. ``amount_due`` is billing's
one definition (``Invoice.objects.with_balance_due``); ``payment_status`` is derived as of the
tenant's today (``with_payment_status``). Payments are ``billing.api_payments``. ``GET …/pdf/`` returns a document's PDF
(a draft's preview with its stamp); another tenant's id is a 404. ``GET …/ubl/`` and ``GET …/facturx/`` return a
finalized invoice's or a credit note's e-invoice (``billing.einvoice``): Peppol BIS 3.0 UBL XML, or the Factur-X
EN 16931 PDF; a draft or void invoice has none (409).
"""

import django_filters
from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, permissions, renderers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from billing import services
from billing.api_payments import PaymentViewSet
from billing.documents import credit_note_staff_pdf, invoice_staff_pdf, pdf_response
from billing.einvoice import (
    EInvoiceError,
    credit_note_facturx,
    credit_note_ubl,
    facturx_response,
    invoice_facturx,
    invoice_ubl,
    xml_response,
)
from billing.models import CreditNote, CreditNoteLine, Invoice, InvoiceLine
from billing.serializers import (
    CreditNoteSerializer,
    InvoiceDetailSerializer,
    InvoiceFinalizeSerializer,
    InvoiceSerializer,
)
from customers.api_base import TenantPagination, acting_user
from customers.periods import tenant_today
from customers.roles import role_can_edit


class IsBillingStaff(permissions.BasePermission):
    """A staff member whose role may edit billing; API keys and other roles are refused."""

    message = "Only finance staff (finance or owner) may change invoices; an API key only reads them."

    def has_permission(self, request, view):
        membership = getattr(request._request, "membership", None)
        return membership is not None and role_can_edit(membership.role, Invoice)


class PDFRenderer(renderers.BaseRenderer):
    """Lets a client ask for ``Accept: application/pdf``; the PDF views answer with the bytes themselves."""

    media_type = "application/pdf"
    format = "pdf"
    charset = None
    render_style = "binary"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        # Only error bodies (404, 403) reach a renderer here; they stay JSON, and say so.
        response = (renderer_context or {}).get("response")
        if response is not None:
            response["Content-Type"] = "application/json"
        return renderers.JSONRenderer().render(data, accepted_media_type, renderer_context)


PDF_SCHEMA = {
    (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="The PDF."),
    404: OpenApiResponse(description="No such document in this tenant."),
}
PDF_RENDERERS = [renderers.JSONRenderer, PDFRenderer]


class XMLRenderer(PDFRenderer):
    """Lets a client ask for ``Accept: application/xml``; the UBL views answer with the bytes themselves."""

    media_type = "application/xml"
    format = "xml"


XML_RENDERERS = [renderers.JSONRenderer, XMLRenderer]
NO_EINVOICE = OpenApiResponse(
    description="No e-invoice: a draft (not finalized yet), a void invoice, one without lines, or a tenant or customer "
    "without the country (or VAT number) EN 16931 requires (`detail` says which and what to set)."
)
UBL_SCHEMA = {
    (200, "application/xml"): OpenApiResponse(OpenApiTypes.BINARY, description="Peppol BIS Billing 3.0 UBL 2.1 XML."),
    404: OpenApiResponse(description="No such document in this tenant."),
}
FACTURX_SCHEMA = {
    (200, "application/pdf"): OpenApiResponse(
        OpenApiTypes.BINARY, description="Factur-X (EN 16931) PDF/A-3b with the CII XML embedded."
    ),
    404: OpenApiResponse(description="No such document in this tenant."),
}


def einvoice_answer(make, respond):
    """``respond(*make())``, or a 409 naming why the document has no e-invoice."""
    try:
        return respond(*make())
    except EInvoiceError as exc:
        return Response({"detail": str(exc), "code": "no_einvoice"}, status=status.HTTP_409_CONFLICT)


class TenantReadOnlyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """List and detail of one tenant-owned model, always in the request's tenant."""

    pagination_class = TenantPagination

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no tenant
            return self.queryset
        return self.scope_queryset(self.queryset.model.objects.for_tenant(self.request.tenant))

    def scope_queryset(self, queryset):
        return queryset


class InvoiceFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Invoice.Status.choices)
    customer = django_filters.NumberFilter(field_name="customer_id")
    period = django_filters.DateFilter(field_name="period_start", input_formats=["%Y-%m"], label="Month, YYYY-MM")
    period_from = django_filters.DateFilter(field_name="period_start", lookup_expr="gte")
    period_to = django_filters.DateFilter(field_name="period_end", lookup_expr="lte")

    class Meta:
        model = Invoice
        fields = []


class InvoiceViewSet(TenantReadOnlyViewSet):
    """Invoices of the tenant, newest period first; the detail carries the lines."""

    queryset = Invoice.objects.none()
    filterset_class = InvoiceFilter
    ordering_fields = ["period_start", "number", "total", "due_date"]
    ordering = ["-period_start", "id"]
    search_fields = ["number", "customer__name"]

    def get_serializer_class(self):
        return InvoiceDetailSerializer if self.action != "list" else InvoiceSerializer

    def scope_queryset(self, queryset):
        queryset = queryset.with_payment_status(today=tenant_today(self.request.tenant)).select_related("customer")
        if self.action != "list":
            lines = InvoiceLine.objects.for_tenant(self.request.tenant).order_by("position")
            queryset = queryset.prefetch_related(Prefetch("lines", queryset=lines))
        return queryset

    def _move(self, service, **options):
        invoice = self.get_object()
        try:
            service(invoice=invoice, **options)
        except ValidationError as exc:
            body = {"detail": " ".join(exc.messages)}
            if getattr(exc, "code", None):
                body["code"] = exc.code
            return Response(body, status=status.HTTP_409_CONFLICT)
        return Response(InvoiceDetailSerializer(self.get_object(), context=self.get_serializer_context()).data)

    @extend_schema(
        request=InvoiceFinalizeSerializer,
        responses={
            200: InvoiceDetailSerializer,
            400: OpenApiResponse(description="`close_early` is not a boolean."),
            409: OpenApiResponse(
                description="Not a draft; or its period has not ended and `close_early` is not true "
                "(`code`: `period_open`, `detail` says what closing early does to later usage)."
            ),
        },
    )
    @action(detail=True, methods=["post"], permission_classes=[IsBillingStaff])
    def finalize(self, request, pk=None):
        """Number and freeze a draft. 409 if it is not a draft, or if its period is still running and
        the body does not say ``{"close_early": true}``."""
        options = InvoiceFinalizeSerializer(data=request.data)
        options.is_valid(raise_exception=True)
        return self._move(services.invoice_finalize, close_early=options.validated_data["close_early"])

    @extend_schema(request=None, responses=InvoiceDetailSerializer)
    @action(detail=True, methods=["post"], permission_classes=[IsBillingStaff])
    def void(self, request, pk=None):
        """Void a draft or finalized invoice. 409 if it is paid or already void."""
        return self._move(services.invoice_void)

    @extend_schema(request=None, responses=InvoiceDetailSerializer)
    @action(detail=True, methods=["post"], url_path="mark-paid", permission_classes=[IsBillingStaff])
    def mark_paid(self, request, pk=None):
        """Record a payment of what a finalized invoice still owes (received today). 409 otherwise."""
        return self._move(services.invoice_mark_paid, created_by=acting_user(request))

    @extend_schema(responses=PDF_SCHEMA)
    @action(detail=True, methods=["get"], renderer_classes=PDF_RENDERERS)
    def pdf(self, request, pk=None):
        """The invoice's PDF: the stored document once numbered, a draft's preview with its stamp."""
        return pdf_response(*invoice_staff_pdf(invoice=self.get_object()))

    @extend_schema(responses={**UBL_SCHEMA, 409: NO_EINVOICE})
    @action(detail=True, methods=["get"], renderer_classes=XML_RENDERERS)
    def ubl(self, request, pk=None):
        """The finalized invoice as Peppol BIS Billing 3.0 UBL XML (``<number>.xml``). 409 when it has none (a draft,
        void, no lines, or a country or VAT number missing), with the reason."""
        invoice = self.get_object()
        return einvoice_answer(lambda: invoice_ubl(invoice=invoice), xml_response)

    @extend_schema(responses={**FACTURX_SCHEMA, 409: NO_EINVOICE})
    @action(detail=True, methods=["get"], renderer_classes=PDF_RENDERERS)
    def facturx(self, request, pk=None):
        """The finalized invoice as a Factur-X EN 16931 PDF (``<number>-facturx.pdf``). 409 when it has none, as for ``ubl``."""
        invoice = self.get_object()
        return einvoice_answer(lambda: invoice_facturx(invoice=invoice), facturx_response)


class CreditNoteFilter(django_filters.FilterSet):
    invoice = django_filters.NumberFilter(field_name="invoice_id")
    customer = django_filters.NumberFilter(field_name="customer_id")

    class Meta:
        model = CreditNote
        fields = []


class CreditNoteViewSet(TenantReadOnlyViewSet):
    """Credit notes of the tenant, with their lines."""

    queryset = CreditNote.objects.none()
    serializer_class = CreditNoteSerializer
    filterset_class = CreditNoteFilter
    ordering = ["-sequence_number"]

    def scope_queryset(self, queryset):
        lines = CreditNoteLine.objects.for_tenant(self.request.tenant).order_by("position")
        return queryset.select_related("invoice").prefetch_related(Prefetch("lines", queryset=lines))

    @extend_schema(responses=PDF_SCHEMA)
    @action(detail=True, methods=["get"], renderer_classes=PDF_RENDERERS)
    def pdf(self, request, pk=None):
        """The credit note's PDF (rendered and stored the first time it is asked for)."""
        return pdf_response(*credit_note_staff_pdf(credit_note=self.get_object()))

    @extend_schema(responses={**UBL_SCHEMA, 409: NO_EINVOICE})
    @action(detail=True, methods=["get"], renderer_classes=XML_RENDERERS)
    def ubl(self, request, pk=None):
        """The credit note as Peppol BIS Billing 3.0 UBL CreditNote XML (``<number>.xml``)."""
        note = self.get_object()
        return einvoice_answer(lambda: credit_note_ubl(credit_note=note), xml_response)

    @extend_schema(responses={**FACTURX_SCHEMA, 409: NO_EINVOICE})
    @action(detail=True, methods=["get"], renderer_classes=PDF_RENDERERS)
    def facturx(self, request, pk=None):
        """The credit note as a Factur-X EN 16931 PDF (TypeCode 381, ``<number>-facturx.pdf``)."""
        note = self.get_object()
        return einvoice_answer(lambda: credit_note_facturx(credit_note=note), facturx_response)


def register(router):
    """Add this app's viewsets to the API router."""
    router.register("invoices", InvoiceViewSet, basename="invoice")
    router.register("credit-notes", CreditNoteViewSet, basename="credit-note")
    router.register("payments", PaymentViewSet, basename="payment")
