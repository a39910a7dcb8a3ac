"""Root URLs: the only place (with settings, wsgi and celery) that knows all three apps."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from rollout import langfuse_api
from rollout.api import api
from rollout.views_docs import api_docs
from rollout.views_fetch import fetch_prompt

urlpatterns = [
    # The fetch is the hot path: a plain view, first, ahead of the API (documented in its OpenAPI).
    path("api/v1/prompts/<servedname:name>", fetch_prompt, name="prompt-fetch"),
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/v1/", api.urls),
    path("api/public/", include(langfuse_api)),
    path("docs/api/", api_docs, name="api-docs"),
    path("experiments/", include("experiments.urls")),
    path("oncall/", include("rollout.urls")),
    path("", include("promptreg.urls_web")),
]

handler400 = "rollout.api_errors.bad_request"
handler403 = "rollout.api_errors.permission_denied"
handler404 = "rollout.api_errors.not_found"
handler500 = "rollout.api_errors.server_error"
