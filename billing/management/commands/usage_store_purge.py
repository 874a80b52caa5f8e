"""``manage.py usage_store_purge --tenant-id ID``: delete a purged tenant's usage events in every store again.

``customers.purge.tenant_purge`` runs this after its commit; should that fail (ClickHouse down), the
tenant is gone from PostgreSQL and its events wait in ClickHouse, read by nobody, until this is run.
Refuses a tenant that still exists: its events are live.
"""

from django.core.management.base import BaseCommand, CommandError

from billing.metering import usage_events_purge
from customers.models import Tenant
from customers.tenancy import platform_scope


class Command(BaseCommand):
    help = "Delete the usage events of an already purged tenant from every configured usage-event store."

    def add_arguments(self, parser):
        parser.add_argument("--tenant-id", type=int, required=True, help="The purged tenant's id.")

    def handle(self, *args, tenant_id, **options):
        with platform_scope(reason="usage_store_purge checks that the tenant was purged"):
            if Tenant.objects.filter(pk=tenant_id).exists():
                raise CommandError(f"Tenant {tenant_id} still exists; purge the tenant itself (its events go with it).")
        try:
            usage_events_purge(tenant_id=tenant_id)
        except ValueError as refusal:
            raise CommandError(str(refusal)) from None
        self.stdout.write(f"Usage events of tenant {tenant_id} deleted from every configured store.")
