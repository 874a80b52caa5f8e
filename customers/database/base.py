"""Django's PostgreSQL backend with every statement run under the active tenant's settings.

A backend rather than a ``connection_created`` hook because the wrapper must know when a transaction
ends (its local settings end with it): commit, rollback and a rollback to a savepoint all forget what
this transaction was told, so the next statement tells it again. Forgetting too often costs one
``set_config``; forgetting too rarely could run a statement with no tenant set, which the policies
answer with no rows (fail closed), never with another tenant's rows.
"""

from django.db.backends.postgresql import base

from customers.database.tenant_settings import apply_tenant_settings


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.rls_applied = None
        self.execute_wrappers.append(apply_tenant_settings)

    def _forget_tenant_settings(self):
        self.rls_applied = None

    def get_new_connection(self, conn_params):
        self._forget_tenant_settings()
        return super().get_new_connection(conn_params)

    def _commit(self):
        self._forget_tenant_settings()
        return super()._commit()

    def _rollback(self):
        self._forget_tenant_settings()
        return super()._rollback()

    def _savepoint_rollback(self, sid):
        self._forget_tenant_settings()
        return super()._savepoint_rollback(sid)

    def _set_autocommit(self, autocommit):
        self._forget_tenant_settings()
        return super()._set_autocommit(autocommit)
