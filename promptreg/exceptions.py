"""Errors the registry's services raise; every entry point maps them the same way."""

from __future__ import annotations


class RegistryError(Exception):
    """Base class: `code` is machine-readable, the message is for people."""

    code = "invalid"
    status = 400

    def __init__(self, message: str, *, code: str | None = None, details: dict | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details or {}


class InvalidInput(RegistryError):
    code = "invalid"


class NotFound(RegistryError):
    code = "not_found"
    status = 404


class Forbidden(RegistryError):
    code = "forbidden"
    status = 403


class GateBlocked(RegistryError):
    """A label move the review policy does not allow yet; `details["missing"]` names the gates."""

    code = "gate_blocked"


class Conflict(RegistryError):
    """The world changed under the caller: a stale form, a rollback someone else already made."""

    code = "conflict"
    status = 409


class NothingToRollBack(RegistryError):
    code = "nothing_to_roll_back"


def json_problem(what: str, exc: ValueError) -> str:
    """A JSON parse error as a sentence for people: what, the problem, and where.

    "Scorers: not valid JSON, expecting value on line 1, column 2." (not Python's "Expecting value: line 1 column 2
    (char 1)")
    """
    where = f" on line {exc.lineno}, column {getattr(exc, 'colno', '')}" if hasattr(exc, "lineno") else ""
    problem = getattr(exc, "msg", str(exc))
    return f"{what}: not valid JSON, {problem[:1].lower() + problem[1:]}{where}."
