"""Health check, the staff tenant switcher and language choice (the customer portal's pages are in
portal.views.customer_portal)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import connection
from django.http import HttpResponseBadRequest, HttpResponseForbidden, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from customers.services import membership_language_set
from portal.tenancy import SESSION_TENANT_KEY


def health(request):
    """For load balancers: the database answers."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


@login_required
@require_POST
def switch_tenant(request):
    """Make another of the user's memberships the active one (kept in the session)."""
    try:
        tenant_id = int(request.POST.get("tenant", ""))
    except ValueError:
        return HttpResponseBadRequest("Choose a tenant.")
    if not any(m.tenant_id == tenant_id for m in request.memberships):
        return HttpResponseBadRequest("You are not a member of that tenant.")
    request.session[SESSION_TENANT_KEY] = tenant_id
    messages.success(request, "Switched tenant.")
    return _back(request)


@login_required
@require_POST
def staff_language(request):
    """The member chooses the language of their staff pages ("" follows the tenant's locale)."""
    if request.membership is None:
        return HttpResponseForbidden("Only a tenant's staff choose a staff language.")
    try:
        language = request.POST.get("language", "")
        membership_language_set(tenant=request.tenant, membership=request.membership, language=language)
    except ValidationError as exc:
        return HttpResponseBadRequest(" ".join(exc.messages))
    return _back(request)


def _back(request):
    target = request.POST.get("next") or reverse("admin:index")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = reverse("admin:index")
    return redirect(target)
