"""Links from the admin to the customer 360 page (``/staff/customers/<id>/``).

The customer admin lives in ``customers``, which must not name a portal URL; the portal adds its
"360 view" column to the customer list here, from ``PortalConfig.ready`` (the admin has discovered
every ModelAdmin by then), as it connects the lower apps' signals. Change forms of the customer and
of everything that names one (contracts, invoices, credit notes, opportunities, …) get their link
from the project's ``templates/admin/change_form_object_tools.html``.
"""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from customers.models import Customer


@admin.display(description=_("360"))
def customer_360_link(customer: Customer) -> str:
    return format_html('<a href="{}" class="customer-360-link">{}</a>',
                       reverse("customer_360", args=[customer.pk]), _("360 view"))


def connect_customer_360_links(site: admin.AdminSite = admin.site) -> None:
    """Put the "360 view" column right after the name in the customer list of ``site`` (once), where
    a narrow screen still shows it."""
    customer_admin = site.get_model_admin(Customer)
    columns = list(customer_admin.list_display)
    if customer_360_link not in columns:
        customer_admin.list_display = [*columns[:1], customer_360_link, *columns[1:]]
