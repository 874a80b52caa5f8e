"""What an e-invoice costs beside the invoice's own PDF, on a loaded tenant's finalized invoices (the demo's).

For each of up to ``invoices`` finalized invoices of the tenant that have lines, the median of ``runs`` calls of:
the UBL XML (``invoice_ubl``); the CII XML alone; the plain PDF render (the baseline: what every
invoice already costs, ``invoice_preview_pdf``); the PDF/A-3b render alone; and the whole Factur-X PDF
(PDF/A-3b render, XSD check, embedding). Figures are the medians over invoices, in milliseconds.
"""

from __future__ import annotations

import statistics

from benchmarks.harness import results_file, results_write, timed_median
from billing.documents import invoice_preview_pdf
from billing.einvoice import PDF_VARIANT, invoice_facturx, invoice_ubl
from billing.einvoice.cii import cii_bytes
from billing.einvoice.document import invoice_document
from billing.models import Invoice
from customers.models import Tenant
from customers.tenancy import platform_scope, tenant_scope

RESULTS_PATH = results_file("einvoice")


def run_einvoice_benchmark(*, slug: str, invoices: int, runs: int) -> dict:
    """Time each form on the tenant ``slug``'s newest finalized invoices; write and return the figures."""
    with platform_scope():
        tenant = Tenant.objects.get(slug=slug)
    with tenant_scope(tenant):
        chosen = list(
            Invoice.objects.for_tenant(tenant)
            .filter(status__in=[Invoice.Status.FINALIZED, Invoice.Status.PAID], lines__isnull=False)
            .distinct()
            .select_related("tenant", "customer", "contract")
            .order_by("-issue_date", "-id")[:invoices]
        )
        timings: dict[str, list[float]] = {"ubl": [], "cii": [], "pdf": [], "pdf_a3b": [], "facturx": []}
        sizes: dict[str, list[int]] = {"ubl": [], "facturx": [], "pdf": []}
        for invoice in chosen:
            (ubl, _name), seconds = timed_median(lambda: invoice_ubl(invoice=invoice), runs)
            timings["ubl"].append(seconds)
            sizes["ubl"].append(len(ubl))
            _, seconds = timed_median(lambda: cii_bytes(invoice_document(invoice)), runs)
            timings["cii"].append(seconds)
            pdf, seconds = timed_median(lambda: invoice_preview_pdf(invoice=invoice), runs)
            timings["pdf"].append(seconds)
            sizes["pdf"].append(len(pdf))
            _, seconds = timed_median(lambda: invoice_preview_pdf(invoice=invoice, pdf_variant=PDF_VARIANT), runs)
            timings["pdf_a3b"].append(seconds)
            (facturx, _name), seconds = timed_median(lambda: invoice_facturx(invoice=invoice), runs)
            timings["facturx"].append(seconds)
            sizes["facturx"].append(len(facturx))
    if not chosen:
        raise ValueError(f"Tenant {slug} has no finalized invoice to measure.")
    medians = {form: round(statistics.median(values) * 1000, 1) for form, values in timings.items()}
    figures = {
        "tenant": slug,
        "invoices": len(chosen),
        "runs_each": runs,
        "median_ms": medians,
        "baseline": "pdf (the invoice's own PDF render)",
        "facturx_over_pdf": round(medians["facturx"] / medians["pdf"], 2),
        "median_bytes": {form: int(statistics.median(values)) for form, values in sizes.items()},
    }
    results_write(RESULTS_PATH, figures)
    return figures
