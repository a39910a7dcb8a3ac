"""The app's URLs plus `/bench/constant`: a bare Django view returning a constant JSON body,
the baseline the fetch endpoint is measured against (same server, same middleware)."""

from django.http import JsonResponse
from django.urls import path

from promptreg.urls import handler403, handler404, handler500  # noqa: F401
from promptreg.urls import urlpatterns as app_urlpatterns


def constant(request):
    return JsonResponse({"name": "constant", "version": 1, "prompt": "Hello {{ name }}", "experiment": None})


urlpatterns = [path("bench/constant", constant), *app_urlpatterns]
