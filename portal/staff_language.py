"""Staff pages speak the staff member's language and write figures the tenant's way.

For a request acting through a staff membership (``portal.tenancy.TenantMiddleware`` sets
``request.membership``), the text language is the membership's own choice, else the tenant's
locale (``Membership.staff_language``), and money, numbers and dates follow the tenant's locale
(``customers.locales.formats_in``): an English-speaking member of a Swedish tenant reads English
headings and ``300 000,00 kr``. Everyone else keeps Django's ``LocaleMiddleware`` choice; the
customer portal then switches to the customer's language in its views.
"""

from django.utils import translation

from customers.locales import formats_in, language_of


class StaffLanguageMiddleware:
    """Must come after ``TenantMiddleware`` (it reads ``request.membership``)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        membership = getattr(request, "membership", None)
        if membership is None:
            return self.get_response(request)
        language = language_of(membership.staff_language)
        translation.activate(language)
        request.LANGUAGE_CODE = language
        with formats_in(membership.tenant.locale):
            response = self.get_response(request)
        response.headers["Content-Language"] = language
        return response
