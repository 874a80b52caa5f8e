import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
application = get_wsgi_application()
# The URL configuration, and with it every view, is imported here rather than in a worker's first
# request (0.13 s here), so that it is loaded, and frozen below, with the rest.
get_resolver().url_patterns

# Everything loaded so far (Django, the apps, their views and libraries: about 187 000 objects the
# collector tracks) lives as long as the process, so the cyclic garbage collector is told to leave it
# alone: gc.freeze() moves it to the permanent generation, which collections skip. Otherwise every
# full collection walks all of it again, and a usage batch of 10 000 events leaves tens of thousands
# of objects behind it that bring the next full collection closer: py-spy on the gunicorn workers put
# a third of their samples in gc_collect_main during ingestion, 7 % with the freeze. The workers' CPU
# an ingested event went from 5.05–5.9 to 4.7–4.95 µs in six alternating runs (docs/scaling.md,
# seventh round).
gc.freeze()
