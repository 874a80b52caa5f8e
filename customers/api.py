"""REST endpoints (filled in by the API work)."""


def register(router):
    """Add this app's viewsets to the API router."""
