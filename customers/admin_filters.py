"""List filters that stay short however many values a column has: a drop-down instead of a list.

A tenant's customers, account managers or countries run to hundreds; listed one per line they made
the customer list 6 600 px tall. ``TenantAdmin`` turns relation filters and choice filters with
many choices into these; an admin may also name them in ``list_filter`` itself. The drop-down is
``templates/admin/dropdown_filter.html``; ``static/portal/admin.js`` follows the chosen option.
"""

from django.contrib.admin import ChoicesFieldListFilter, RelatedOnlyFieldListFilter, SimpleListFilter
from django.contrib.admin.views.main import SEARCH_VAR

DROPDOWN_TEMPLATE = "admin/dropdown_filter.html"
# A choice filter with more choices than this becomes a drop-down of the values in use.
LONG_CHOICES = 12


class RelatedOnlyDropdownFilter(RelatedOnlyFieldListFilter):
    """The related rows in use (customers, owners…) as a drop-down."""

    template = DROPDOWN_TEMPLATE


class ChoicesInUseDropdownFilter(ChoicesFieldListFilter):
    """A long choice list (countries) cut to the values the admin's rows use, as a drop-down."""

    template = DROPDOWN_TEMPLATE

    def __init__(self, field, request, params, model, model_admin, field_path):
        super().__init__(field, request, params, model, model_admin, field_path)
        rows = model_admin.get_queryset(request).order_by()
        self.values_in_use = {str(value) for value in rows.values_list(field_path, flat=True).distinct()}

    def choices(self, changelist):
        choices = super().choices(changelist)
        yield next(choices)  # "All"
        # The parent yields one choice per non-empty value of flatchoices, in order, then "None" if any.
        for value in [value for value, _label in self.field.flatchoices if value is not None]:
            choice = next(choices)
            if str(value) in self.values_in_use or choice["selected"]:
                yield choice
        yield from choices


class DefaultedListFilter(SimpleListFilter):
    """A filter that starts on a default choice (``default``, set before ``__init__``) until the user
    picks one, such as "Mine" for account managers or "Open" on the pipeline.

    A search covers the whole tenant: while a search term is given, the default gives way to
    ``search_default`` (the choice that narrows nothing), so a customer someone else manages, or a
    deal already won, is found. A choice the user picked in the filter still applies, and shows as
    selected, so what narrows the result is always visible.
    """

    default = None
    search_default = None

    def __init__(self, request, params, model, model_admin):
        super().__init__(request, params, model, model_admin)
        if self.search_default is not None and request.GET.get(SEARCH_VAR, "").strip():
            self.default = self.search_default

    def current(self):
        value = self.value()
        return value if value in {choice for choice, _label in self.lookup_choices} else self.default

    def choices(self, changelist):
        current = self.current()
        for value, label in self.lookup_choices:
            yield {
                "selected": current == value,
                "query_string": changelist.get_query_string({self.parameter_name: value}),
                "display": label,
            }
