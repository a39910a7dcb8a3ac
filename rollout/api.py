"""The app-server JSON API (`/api/v1/`), one NinjaAPI with a router per area.

django-ninja validates input and generates `/api/v1/openapi.json`; the
handlers below turn every failure into `{"error": {"code", "message"}}`.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig
from ninja.errors import AuthenticationError, HttpError, ValidationError

from experiments.api_evaluations import router as evaluations_router
from experiments.api_experiments import router as experiments_router
from experiments.api_playground import router as playground_router
from promptreg.exceptions import RegistryError
from rollout.api_base import PromptregAPI
from rollout.api_errors import error_response
from rollout.api_monitors import router as monitors_router
from rollout.api_samples import router as samples_router
from rollout.api_webhooks import router as webhooks_router

api = PromptregAPI(
    title="promptreg API",
    version="1",
    description="Fetch live prompts, publish versions, move labels, roll back, post scores, run evaluations and "
    "experiments.",
    urls_namespace="api",
)
api.add_router("", experiments_router)
api.add_router("", evaluations_router)
api.add_router("", playground_router)  # /prompts/{name}/run: before the prompts router, like the monitors
api.add_router("", samples_router)  # before the prompts router, like the monitors
api.add_router("", monitors_router)  # before the prompts router, whose /prompts/{name} takes folder names
api.add_router("", webhooks_router)


@api.exception_handler(RegistryError)
def registry_error(request, exc: RegistryError):
    return error_response(exc.status, exc.code, exc.message, **exc.details)


@api.exception_handler(ValidationError)
def validation_error(request, exc: ValidationError):
    problems: list[dict[str, Any]] = [
        {"loc": [str(p) for p in e.get("loc", [])], "message": e.get("msg", "invalid")} for e in exc.errors
    ]
    first: dict[str, Any] = problems[0] if problems else {"loc": [], "message": "invalid input"}
    where = ".".join(first["loc"][1:] or first["loc"])
    return error_response(
        400, "invalid", f"{where}: {first['message']}" if where else first["message"], problems=problems
    )


@api.exception_handler(AuthenticationError)
def authentication_error(request, exc):
    return error_response(401, "unauthorized", "Send a valid API key as 'Authorization: Bearer <secret>'.")


@api.exception_handler(HttpError)
def http_error(request, exc: HttpError):
    message = str(exc)
    if exc.status_code >= 500:
        code = "server_error"
    elif message.startswith("Cannot parse request body"):
        # ninja shows the parser's reason only with DEBUG on; it names what and where, so always show it.
        code, message = "invalid_json", f"Cannot parse request body: {exc.__cause__}" if exc.__cause__ else message
    else:
        code = "invalid"
    return error_response(exc.status_code, code, message)


@api.exception_handler(RequestDataTooBig)
def too_big(request, exc):
    return error_response(413, "too_large", "The request body is larger than the 1 MiB limit.")


from rollout.api_prompt_list import router as prompt_list_router  # noqa: E402
from rollout.api_prompts import router as prompts_router  # noqa: E402  (routers import the handlers above)

api.add_router("", prompt_list_router)
api.add_router("", prompts_router)
