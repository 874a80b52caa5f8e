"""The Celery app of the month-end worker tests: portal's own app, with every PDF render slowed down by
``MONTH_END_TEST_RENDER_DELAY`` seconds, so a test can kill the worker in the middle of a run.

Started as ``celery -A tests.billing.month_end_worker_app worker``; production code has no such hook.
"""

import os
import time

import weasyprint

from portal.celery import app  # noqa: F401  (the app Celery looks for in this module)

_DELAY = float(os.environ.get("MONTH_END_TEST_RENDER_DELAY", "0"))

if _DELAY:
    _write_pdf = weasyprint.HTML.write_pdf

    def _slow_write_pdf(self, *args, **kwargs):
        time.sleep(_DELAY)
        return _write_pdf(self, *args, **kwargs)

    weasyprint.HTML.write_pdf = _slow_write_pdf
