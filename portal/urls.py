from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, reverse_lazy
from drf_spectacular.views import SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from billing.api import register as register_billing_api
from billing.api_catalog import register as register_billing_catalog_api
from billing.api_webhooks import register as register_billing_webhooks_api
from billing.api_catalog import url_patterns as billing_catalog_api_patterns
from billing.api_usage import url_patterns as usage_api_patterns
from billing.webhooks import url_patterns as webhook_patterns
from customers.api import register as register_customers_api
from portal.password_reset import PortalPasswordResetView
from portal.views import card_payments, customer_portal, roi, site, two_factor
from portal.views.api_schema import CachedSpectacularAPIView
from portal.views.customer_360 import customer_360_page
from portal.views.dashboards import url_patterns as dashboard_patterns
from portal.views.economics import url_patterns as economics_patterns
from revenue.api import register as register_revenue_api
from revenue.api_catalog import register as register_revenue_catalog_api
from revenue.api_accounting import url_patterns as accounting_api_patterns
from revenue.api_metrics import url_patterns as metrics_api_patterns
from revenue.economics.api import url_patterns as economics_api_patterns

router = DefaultRouter()
register_customers_api(router)
register_revenue_api(router)
register_billing_api(router)
register_billing_catalog_api(router)
register_billing_webhooks_api(router)
register_revenue_catalog_api(router)

portal_patterns = [
    path("", customer_portal.home, name="home"),
    path("invoices/", customer_portal.invoice_list, name="invoice_list"),
    path("invoices/<int:invoice_id>/", customer_portal.invoice_detail, name="invoice_detail"),
    path("invoices/<int:invoice_id>/pdf/", customer_portal.invoice_pdf, name="invoice_pdf"),
    path("invoices/<int:invoice_id>/pay/", card_payments.invoice_pay, name="invoice_pay"),
    path(
        "invoices/<int:invoice_id>/export.<str:export_format>",
        customer_portal.invoice_export,
        name="invoice_export",
    ),
    path("invoices/<int:invoice_id>/ubl/", customer_portal.invoice_ubl_download, name="invoice_ubl"),
    path("invoices/<int:invoice_id>/facturx/", customer_portal.invoice_facturx_download, name="invoice_facturx"),
    path("credit-notes/", customer_portal.credit_note_list, name="credit_note_list"),
    path("credit-notes/<int:credit_note_id>/", customer_portal.credit_note_detail, name="credit_note_detail"),
    path("credit-notes/<int:credit_note_id>/pdf/", customer_portal.credit_note_pdf, name="credit_note_pdf"),
    path("credit-notes/<int:credit_note_id>/ubl/", customer_portal.credit_note_ubl_download, name="credit_note_ubl"),
    path(
        "credit-notes/<int:credit_note_id>/facturx/",
        customer_portal.credit_note_facturx_download,
        name="credit_note_facturx",
    ),
    path(
        "credit-notes/<int:credit_note_id>/export.<str:export_format>",
        customer_portal.credit_note_export,
        name="credit_note_export",
    ),
    path("usage/", customer_portal.usage, name="usage"),
    path("roi/", roi.roi, name="roi"),
    path("accounts/login/", auth_views.LoginView.as_view(template_name="portal/login.html"), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "accounts/password-reset/",
        PortalPasswordResetView.as_view(
            template_name="portal/password_reset_form.html",
            email_template_name="portal/password_reset_email.txt",
            subject_template_name="portal/password_reset_subject.txt",
            success_url=reverse_lazy("portal:password_reset_done"),
        ),
        name="password_reset",
    ),
    path(
        "accounts/password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(template_name="portal/password_reset_done.html"),
        name="password_reset_done",
    ),
    path(
        "accounts/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(
            template_name="portal/password_reset_confirm.html",
            success_url=reverse_lazy("portal:password_reset_complete"),
        ),
        name="password_reset_confirm",
    ),
    path(
        "accounts/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(template_name="portal/password_reset_complete.html"),
        name="password_reset_complete",
    ),
    path("tenant/switch/", site.switch_tenant, name="switch_tenant"),
    path("staff/language/", site.staff_language, name="staff_language"),
    path("staff/two-factor/", two_factor.two_factor_account, name="two_factor"),
    path("staff/two-factor/setup/", two_factor.two_factor_setup, name="two_factor_setup"),
    path("staff/two-factor/verify/", two_factor.two_factor_verify, name="two_factor_verify"),
    path("staff/two-factor/turn-off/", two_factor.two_factor_turn_off, name="two_factor_turn_off"),
]

# The admin's app sidebar takes 300 px of a 1 280 px screen from every list and form; the admin home
# and the breadcrumbs lead to every page (issue 11: staff pages fit 1 280 × 800).
admin.site.enable_nav_sidebar = False

urlpatterns = [
    path("", include((portal_patterns, "portal"))),
    path("staff/economics/", include((economics_patterns(), "economics"))),
    path("admin/", admin.site.urls),
    path("staff/customers/<int:customer_id>/", customer_360_page, name="customer_360"),
    path("staff/", include((dashboard_patterns(), "dashboards"))),
    path("api/v1/", include(usage_api_patterns())),
    path("api/v1/", include(billing_catalog_api_patterns())),
    path("api/v1/", include(metrics_api_patterns())),
    path("api/v1/", include(accounting_api_patterns())),
    path("api/v1/", include(economics_api_patterns())),
    path("api/v1/", include(router.urls)),
    path("api/schema/", CachedSpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),  # no inline script (CSP)
    path("healthz", site.health, name="health"),
    path("pay/done/", card_payments.card_pay_done, name="card_pay_done"),
    path("pay/<str:token>/", card_payments.card_pay, name="card_pay"),
    path("", include(webhook_patterns())),
]

# JSON errors under /api/ (a 500 included), Django's pages elsewhere.
handler400 = "portal.api_errors.bad_request"
handler403 = "portal.api_errors.permission_denied"
handler404 = "portal.api_errors.page_not_found"
handler500 = "portal.api_errors.server_error"
