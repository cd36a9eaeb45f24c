"""Domain errors that carry their wire code; the HTTP edge and the socket hub map them."""

from __future__ import annotations

from typing import Any, ClassVar


class TolkError(Exception):
    """A failure a client can be told about: a stable code, a status and a human message."""

    code: ClassVar[str] = "error"
    status: ClassVar[int] = 400
    default_message: ClassVar[str] = "The request could not be processed."

    def __init__(self, message: str | None = None, **details: Any) -> None:
        self.message = message or self.default_message
        self.details = details
        super().__init__(self.message)

    def to_wire(self) -> dict[str, Any]:
        """The body of the error object on the wire."""
        return {"code": self.code, "message": self.message, **self.details}


class InvalidInput(TolkError):
    """Input that fails validation. Its wire error always names what is wrong:
    `fields: [{field, problem}]`, given whole, or one entry for `field` (default: the body)."""

    code = "invalid_input"
    status = 422
    default_message = "The request body is not valid."

    def __init__(
        self,
        message: str | None = None,
        *,
        field: str = "body",
        fields: list[dict[str, str]] | None = None,
        problem_code: str | None = None,
        **details: Any,
    ) -> None:
        super().__init__(message, **details)
        # Kept in `details`, which both the HTTP edge and the socket put on the wire. The
        # problem's `code` lets a page say it in its own language; `problem` is English.
        entry = {"field": field, "problem": self.message}
        if problem_code:
            entry["code"] = problem_code
        self.details["fields"] = fields if fields is not None else [entry]


class NotAuthenticated(TolkError):
    code = "not_authenticated"
    status = 401
    default_message = "Please log in."


class Forbidden(TolkError):
    code = "forbidden"
    status = 403
    default_message = "You are not allowed to do this."


class NotFound(TolkError):
    code = "not_found"
    status = 404
    default_message = "Not found."


class Conflict(TolkError):
    code = "conflict"
    status = 409
    default_message = "That conflicts with the current state."


class UnsupportedMediaType(TolkError):
    code = "unsupported_media_type"
    status = 415
    default_message = "Send the body as application/json."


class TooManyRequests(TolkError):
    code = "too_many_requests"
    status = 429
    default_message = "Too many requests; please wait."

    def __init__(self, retry_after_s: int, message: str | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = max(1, retry_after_s)
