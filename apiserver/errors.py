"""Kubernetes API errors as `Status` objects, with the real apiserver's wording.

Every failure the apiserver answers is an `APIError`; the HTTP layer renders it with
`to_status()`. Pure: no IO.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Reason(enum.StrEnum):
    """metav1.StatusReason values the server uses."""

    BAD_REQUEST = "BadRequest"
    UNAUTHORIZED = "Unauthorized"
    FORBIDDEN = "Forbidden"
    NOT_FOUND = "NotFound"
    ALREADY_EXISTS = "AlreadyExists"
    CONFLICT = "Conflict"
    GONE = "Gone"
    EXPIRED = "Expired"
    INVALID = "Invalid"
    METHOD_NOT_ALLOWED = "MethodNotAllowed"
    NOT_ACCEPTABLE = "NotAcceptable"
    UNSUPPORTED_MEDIA_TYPE = "UnsupportedMediaType"
    INTERNAL_ERROR = "InternalError"
    SERVICE_UNAVAILABLE = "ServiceUnavailable"
    TIMEOUT = "Timeout"
    REQUEST_ENTITY_TOO_LARGE = "RequestEntityTooLarge"


class CauseType(enum.StrEnum):
    """field.ErrorType values as they appear in StatusCause.reason."""

    REQUIRED = "FieldValueRequired"
    INVALID = "FieldValueInvalid"
    NOT_SUPPORTED = "FieldValueNotSupported"
    DUPLICATE = "FieldValueDuplicate"
    FORBIDDEN = "FieldValueForbidden"
    TOO_LONG = "FieldValueTooLong"
    NOT_FOUND = "FieldValueNotFound"
    TYPE_INVALID = "FieldValueTypeInvalid"


_CAUSE_TEXT = {
    CauseType.REQUIRED: "Required value",
    CauseType.INVALID: "Invalid value",
    CauseType.NOT_SUPPORTED: "Unsupported value",
    CauseType.DUPLICATE: "Duplicate value",
    CauseType.FORBIDDEN: "Forbidden",
    CauseType.TOO_LONG: "Too long",
    CauseType.NOT_FOUND: "Not found",
    CauseType.TYPE_INVALID: "Invalid value",
}

_NO_VALUE = object()


def format_value(value: Any) -> str:
    """Render a bad value the way field.Error does: strings quoted, numbers bare."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, GoValue):
        return str.__str__(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    if value is None:
        return "null"
    if isinstance(value, list):
        return "[]string{" + ", ".join(format_value(v) for v in value) + "}"
    if isinstance(value, dict):
        return (
            "map[string]string{"
            + ", ".join(f"{format_value(k)}:{format_value(v)}" for k, v in sorted(value.items()))
            + "}"
        )
    return str(value)


class GoValue(str):
    """A bad value already written as Go's %#v prints it (a struct), shown as is."""


@dataclass(frozen=True)
class FieldError:
    """One validation failure (field.Error): a path, a type, the bad value and a detail."""

    type: CauseType
    field: str
    value: Any = _NO_VALUE
    detail: str = ""

    def body(self) -> str:
        text = _CAUSE_TEXT[self.type]
        if (
            self.type in (CauseType.REQUIRED, CauseType.FORBIDDEN, CauseType.TOO_LONG)
            or self.value is _NO_VALUE
        ):
            return f"{text}: {self.detail}" if self.detail else text
        text = f"{text}: {format_value(self.value)}"
        return f"{text}: {self.detail}" if self.detail else text

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}"


def required(path: str, detail: str = "") -> FieldError:
    return FieldError(CauseType.REQUIRED, path, detail=detail)


def invalid(path: str, value: Any, detail: str) -> FieldError:
    return FieldError(CauseType.INVALID, path, value, detail)


def not_supported(path: str, value: Any, supported: list[str]) -> FieldError:
    detail = "supported values: " + ", ".join(f'"{s}"' for s in supported)
    return FieldError(CauseType.NOT_SUPPORTED, path, value, detail)


def duplicate(path: str, value: Any) -> FieldError:
    return FieldError(CauseType.DUPLICATE, path, value)


def forbidden(path: str, detail: str) -> FieldError:
    return FieldError(CauseType.FORBIDDEN, path, detail=detail)


def too_long(path: str, max_length: int) -> FieldError:
    return FieldError(CauseType.TOO_LONG, path, detail=f"must have at most {max_length} bytes")


@dataclass(eq=False)
class APIError(Exception):
    """An error answered to the client as a metav1.Status."""

    code: int
    reason: Reason | None
    message: str
    details: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message

    def to_status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
        }
        if self.reason is not None:
            status["reason"] = str(self.reason)
        if self.details is not None:
            status["details"] = self.details
        status["code"] = self.code
        return status


@dataclass(frozen=True)
class GroupResource:
    """A qualified resource name as errors print it: `pods`, `leases.coordination.k8s.io`."""

    group: str
    resource: str

    def __str__(self) -> str:
        return f"{self.resource}.{self.group}" if self.group else self.resource


def _details(gr: GroupResource, name: str, **extra: Any) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name, "group": gr.group, "kind": gr.resource}
    if not name:
        del details["name"]
    details.update(extra)
    return details


def not_found(gr: GroupResource, name: str) -> APIError:
    return APIError(404, Reason.NOT_FOUND, f'{gr} "{name}" not found', _details(gr, name))


def already_exists(gr: GroupResource, name: str) -> APIError:
    return APIError(409, Reason.ALREADY_EXISTS, f'{gr} "{name}" already exists', _details(gr, name))


def conflict(gr: GroupResource, name: str, why: str) -> APIError:
    message = f'Operation cannot be fulfilled on {gr} "{name}": {why}'
    return APIError(409, Reason.CONFLICT, message, _details(gr, name))


MODIFIED = "the object has been modified; please apply your changes to the latest version and try again"


def modified_conflict(gr: GroupResource, name: str) -> APIError:
    return conflict(gr, name, MODIFIED)


def forbidden_error(gr: GroupResource, name: str, why: str) -> APIError:
    message = f'{gr} "{name}" is forbidden: {why}' if name else f"{gr} is forbidden: {why}"
    return APIError(403, Reason.FORBIDDEN, message, _details(gr, name))


def invalid_error(group: str, kind: str, name: str, errors: list[FieldError]) -> APIError:
    qualified = f"{kind}.{group}" if group else kind
    if not errors:
        message = f'{qualified} "{name}" is invalid'
    elif len(errors) == 1:
        message = f'{qualified} "{name}" is invalid: {errors[0]}'
    else:
        message = f'{qualified} "{name}" is invalid: [' + ", ".join(str(e) for e in errors) + "]"
    causes = [{"reason": str(e.type), "message": e.body(), "field": e.field} for e in errors]
    details = {"name": name, "group": group, "kind": kind, "causes": causes}
    return APIError(422, Reason.INVALID, message, details)


def bad_request(message: str) -> APIError:
    return APIError(400, Reason.BAD_REQUEST, message)


def method_not_allowed(verb: str, what: str) -> APIError:
    return APIError(405, Reason.METHOD_NOT_ALLOWED, f"{verb} is not supported on resources of kind {what!r}")


def method_not_supported(path: str = "") -> APIError:
    """405 for a verb a resource (or, with `path`, a discovery document) does not serve."""
    where = f" ({path})" if path else ""
    return APIError(
        405,
        Reason.METHOD_NOT_ALLOWED,
        f"the server does not allow this method on the requested resource{where}",
    )


def not_found_path() -> APIError:
    """What the real server answers for a path it does not serve."""
    return APIError(404, Reason.NOT_FOUND, "the server could not find the requested resource", {})


def expired(message: str) -> APIError:
    return APIError(410, Reason.EXPIRED, message)


def too_old_resource_version(requested: int, compacted: int) -> APIError:
    return expired(f"too old resource version: {requested} ({compacted})")


def unsupported_media_type(content_type: str, hint: str = "") -> APIError:
    message = (
        f"the body of the request was in an unknown format ({content_type}) - accepted media types include: "
        "application/json, application/yaml, application/json-patch+json, application/merge-patch+json, "
        "application/strategic-merge-patch+json, application/apply-patch+yaml"
    )
    if hint:
        message += f"; {hint}"
    return APIError(415, Reason.UNSUPPORTED_MEDIA_TYPE, message)


def internal_error(message: str) -> APIError:
    return APIError(500, Reason.INTERNAL_ERROR, f"Internal error occurred: {message}")


def service_unavailable(message: str) -> APIError:
    return APIError(503, Reason.SERVICE_UNAVAILABLE, message)


def unprocessable(message: str) -> APIError:
    """A 422 without details, as the real server answers patches that cannot apply."""
    return APIError(422, Reason.INVALID, message)


class PatchError(ValueError):
    """A patch document that cannot be applied. `malformed` patches are 400, the rest 422."""

    def __init__(self, message: str, malformed: bool = False) -> None:
        super().__init__(message)
        self.malformed = malformed
