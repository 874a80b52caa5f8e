from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from customers.api import register as register_customers_api
from portal import views
from revenue.api import register as register_revenue_api

router = DefaultRouter()
register_customers_api(router)
register_revenue_api(router)

portal_patterns = [
    path("", views.home, name="home"),
    path("accounts/login/", auth_views.LoginView.as_view(template_name="portal/login.html"), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("tenant/switch/", views.switch_tenant, name="switch_tenant"),
]

urlpatterns = [
    path("", include((portal_patterns, "portal"))),
    path("admin/", admin.site.urls),
    path("api/v1/", include(router.urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("healthz", views.health, name="health"),
]
