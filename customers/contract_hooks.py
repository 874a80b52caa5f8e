"""Who keeps something derived from contracts current, without customers knowing who they are.

Revenue keeps each customer's MRR per change month (``revenue.models.CustomerMrrFact``) so that its
pages read a few hundred thousand small rows instead of recomputing every contract line per page
load. Those facts must change with the contract, in the same transaction, or a page read right
after a change would show the old MRR. ``customers`` must not import ``revenue`` (tests/architecture),
so this is the same dependency inversion as ``customers.change_guards``: a higher app registers a
hook here from its ``AppConfig.ready`` and every contract service calls ``contract_changed`` once,
explicitly, after its last write.

Why explicit calls and not a model signal (``post_save`` on ContractLine): one change writes several
rows (a line ends, a new version starts, a cancellation ends every line and deletes the future ones),
and a signal would refresh the customer once per row, and miss the queryset ``delete()``. Why not a
dirty-marker table read at commit: Django has no pre-commit hook, so the facts would be refreshed
after the commit, in a second transaction that can fail on its own; a page read between the two
would show stale MRR. The hook runs inside the service's transaction: a refused or failed change
rolls back the facts with it.

A hook is ``hook(*, tenant, customer_ids)``; registering a name again replaces it, so a second
``ready`` is harmless. Services nested in another service (``contract_change`` calling
``contract_cancel``) call it once, from the inner service that writes.
"""

from collections.abc import Callable, Collection

from customers.models import Tenant

Hook = Callable[..., None]
_HOOKS: dict[str, Hook] = {}


def register_contract_hook(name: str, hook: Hook) -> None:
    """Register ``hook`` under ``name``, called by ``contract_changed``."""
    _HOOKS[name] = hook


def contract_changed(*, tenant: Tenant, customer_ids: Collection[int]) -> None:
    """Tell every registered hook that the contracts of ``customer_ids`` changed; call inside the
    writing transaction, after the last write."""
    for hook in _HOOKS.values():
        hook(tenant=tenant, customer_ids=customer_ids)
