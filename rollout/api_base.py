"""The `/api/v1` NinjaAPI: a JSON parser that refuses text the database cannot store,
and an OpenAPI document in which every operation declares the errors the contract promises.

Every client error under `/api/` is `{"error": {"code", "message"}}` (the API's
exception handlers and `ApiJsonErrorsMiddleware` make sure of it), whatever the
endpoint, so the common ones are declared here once instead of in each router.
A router's own declaration of a status wins.
"""

from __future__ import annotations

from typing import Any

from ninja import NinjaAPI
from ninja.parser import Parser

from promptreg.storable import parse_json
from rollout.api_examples import EXAMPLES

ERROR_SCHEMA = {
    "title": "ErrorResponse",
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "examples": ["invalid"]},
                "message": {"type": "string", "examples": ["version: Input should be greater than or equal to 1"]},
            },
            "required": ["code", "message"],
        }
    },
    "required": ["error"],
}
COMMON_ERRORS = {
    400: "Invalid input: the message says what and where; nothing was changed.",
    401: "Missing, invalid or revoked API key.",
    403: "The API key lacks the scope this operation needs.",
    404: "No such prompt, version, label or object.",
    413: "The request body is larger than the limit (1 MiB by default).",
}


def declare_common_errors(schema: dict[str, Any]) -> dict[str, Any]:
    schema.setdefault("components", {}).setdefault("schemas", {})["ErrorResponse"] = ERROR_SCHEMA
    reference = {"$ref": "#/components/schemas/ErrorResponse"}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status, description in COMMON_ERRORS.items():
                if status not in responses and str(status) not in responses:
                    responses[status] = {
                        "description": description,
                        "content": {"application/json": {"schema": reference}},
                    }
    return schema


class StorableJsonParser(Parser):
    def parse_body(self, request):
        return parse_json(request.body)


def _has_example(media: dict[str, Any], components: dict[str, Any]) -> bool:
    schema = media.get("schema", {})
    if "$ref" in schema:
        schema = components.get(schema["$ref"].rsplit("/", 1)[-1], {})
    return any(k in media or k in schema for k in ("example", "examples"))


def add_examples(schema: dict[str, Any]) -> dict[str, Any]:
    """Fill in `rollout.api_examples` wherever a router gave no example of its own."""
    components = schema.get("components", {}).get("schemas", {})
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            example = EXAMPLES.get((method, path))
            if example is None:
                continue
            for parameter in operation.get("parameters", []):
                if parameter["name"] in example["params"] and "example" not in parameter:
                    parameter["example"] = example["params"][parameter["name"]]
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None and example["request"] is not None and not _has_example(body, components):
                body["example"] = example["request"]
            answer = operation.get("responses", {}).get(example["status"]) or operation.get("responses", {}).get(
                str(example["status"])
            )
            media = (answer or {}).get("content", {}).get("application/json")
            if media is not None and "example" not in media:
                media["example"] = example["response"]
    return schema


class PromptregAPI(NinjaAPI):
    def __init__(self, **kwargs: Any):
        super().__init__(parser=StorableJsonParser(), **kwargs)

    def get_openapi_schema(self, **kwargs: Any):
        return add_examples(declare_common_errors(super().get_openapi_schema(**kwargs)))
