"""The demo's logins: a platform admin, one staff login per role per tenant, a user working for two
tenants, and portal logins for three customers per tenant. All are ensured, never duplicated."""

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django_otp.plugins.otp_totp.models import TOTPDevice

from customers.models import Contact, Customer, Membership, PortalAccess, Role, Tenant
from portal.two_factor import has_two_factor

DEMO_PASSWORD = "demo-pass-2026"
ADMIN_USERNAME = "admin"
# Two-factor is mandatory for platform superusers (portal.two_factor): the demo's admin has this device,
# whose current code ``manage.py otp_code admin`` prints (that command prints no other device's codes).
DEMO_TOTP_DEVICE = "Demo authenticator (manage.py otp_code)"
MULTI_USERNAME = "demo-multi"
MULTI_TENANTS = ("optimizer", "konsult")
# Staff read their pages in the tenant's language unless they chose one: Alex Morgan, working for the
# American and the Swedish tenant, chose English (and still sees Swedish money in the Swedish tenant).
MULTI_LANGUAGE = "en"
ROLE_SUFFIXES = {"owner": Role.OWNER, "manager": Role.ACCOUNT_MANAGER, "finance": Role.FINANCE, "viewer": Role.VIEWER}
STAFF_NAMES = {  # owner, account manager, finance, viewer
    "optimizer": ["Maya Chen", "Jordan Reyes", "Priya Natarajan", "Sam Okafor"],
    "jobapi": ["Daniel Weiss", "Aisha Bello", "Tom Lindqvist", "Grace Park"],
    "konsult": ["Karin Lindberg", "Erik Johansson", "Sara Nyström", "Oskar Berg"],
}
# The consultancy is small: its owner keeps accounts too.
OWNER_MANAGES_ACCOUNTS = {"konsult"}


@dataclass(frozen=True)
class Login:
    username: str
    role: str
    tenant: str
    where: str


class Logins:
    """Ensures users and their rights; remembers every login for the closing table."""

    def __init__(self):
        # One hash for all demo users: hashing the same password twenty times costs seconds for nothing.
        self.password_hash = make_password(DEMO_PASSWORD)
        self.rows: list[Login] = []

    def _user(self, username: str, full_name: str, *, is_staff: bool, is_superuser: bool = False, email: str = ""):
        first, _, last = full_name.partition(" ")
        user, _ = get_user_model().objects.get_or_create(username=username)
        user.first_name, user.last_name = first, last
        user.email = email or f"{username}@demo.example.com"
        user.is_staff, user.is_superuser, user.is_active = is_staff, is_superuser, True
        user.password = self.password_hash
        user.save()
        return user

    def admin(self) -> None:
        user = self._user(ADMIN_USERNAME, "Platform Admin", is_staff=True, is_superuser=True)
        # Only when admin has none: a device someone set up in its place is kept.
        if not has_two_factor(user):
            TOTPDevice.objects.create(user=user, name=DEMO_TOTP_DEVICE, confirmed=True)
        where = f"/admin/, then the code of `manage.py otp_code {ADMIN_USERNAME}`"
        self.rows.append(Login(ADMIN_USERNAME, "platform superuser", "all tenants", where))

    def _membership(self, tenant: Tenant, user, role: str, language: str = "") -> None:
        membership, created = Membership.objects.for_tenant(tenant).get_or_create(
            tenant=tenant, user=user, defaults={"role": role, "language": language}
        )
        if not created and (membership.role, membership.language) != (role, language):
            membership.role, membership.language = role, language
            membership.save(update_fields=["role", "language"])

    def staff(self, tenant: Tenant) -> list:
        """Ensure the tenant's staff logins; return the users who manage its accounts."""
        names = STAFF_NAMES.get(tenant.slug, [])
        managers = []
        for index, (suffix, role) in enumerate(ROLE_SUFFIXES.items()):
            username = f"{tenant.slug}-{suffix}"
            user = self._user(username, names[index] if names else username, is_staff=True)
            self._membership(tenant, user, role)
            self.rows.append(Login(username, Role(role).label, tenant.name, "/admin/"))
            if role == Role.ACCOUNT_MANAGER or (role == Role.OWNER and tenant.slug in OWNER_MANAGES_ACCOUNTS):
                managers.append(user)
        if tenant.slug in MULTI_TENANTS:
            user = self._user(MULTI_USERNAME, "Alex Morgan", is_staff=True)
            self._membership(tenant, user, Role.ACCOUNT_MANAGER, MULTI_LANGUAGE)
            self.rows.append(Login(MULTI_USERNAME, Role.ACCOUNT_MANAGER.label, tenant.name, "/admin/ (switch tenant)"))
            managers.append(user)
        return managers

    def portal(self, tenant: Tenant, refs: list[str]) -> None:
        """Ensure ``<slug>-customer1..n`` for the customers with these references, in order."""
        customers = {c.external_ref: c for c in Customer.objects.for_tenant(tenant).filter(external_ref__in=refs)}
        for number, ref in enumerate(refs, start=1):
            customer = customers.get(ref)
            if customer is None:  # someone removed the showcase customer: nothing to attach a login to
                continue
            contact = Contact.objects.for_tenant(tenant).filter(customer=customer, is_billing_contact=True).first()
            username = f"{tenant.slug}-customer{number}"
            full_name, email = (contact.name, contact.email) if contact else (customer.name, "")
            user = self._user(username, full_name, is_staff=False, email=email)
            access = PortalAccess.objects.filter(user=user).first()
            if access is None:
                access = PortalAccess(tenant=tenant, user=user, customer=customer)
                access.full_clean()
                access.save()
            self.rows.append(Login(username, f"portal user of {access.customer.name}", tenant.name, "/"))
