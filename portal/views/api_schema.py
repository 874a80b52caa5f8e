"""The OpenAPI schema view, generated once per process for each API version and language."""

from django.utils import translation
from drf_spectacular.views import SpectacularAPIView
from rest_framework.response import Response


class CachedSpectacularAPIView(SpectacularAPIView):
    """drf-spectacular's schema view, with the generated schema kept in memory.

    The public schema depends on the code only (the URL conf, serializers, settings), which a
    running process never changes, so walking every endpoint again on each request (most of a
    second on the demo) buys nothing: it is generated on its first request per API version and
    language, and served from memory after.
    """

    _schemas: dict = {}

    def _get_schema_response(self, request):
        version = self.api_version or request.version or self._get_version_parameter(request)
        key = (version, translation.get_language(), self.serve_public, str(self.urlconf))
        schema = self._schemas.get(key)
        if schema is None:
            generator = self.generator_class(urlconf=self.urlconf, api_version=version, patterns=self.patterns)
            schema = self._schemas[key] = generator.get_schema(request=request, public=self.serve_public)
        return Response(
            data=schema,
            headers={"Content-Disposition": f'inline; filename="{self._get_filename(request, version)}"'},
        )
