"""Validation shared by all kinds: names, labels, annotations, ObjectMeta, ports.

Messages follow k8s.io/apimachinery/pkg/util/validation word for word, because users
and tests compare them. Pure: no IO.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from apiserver.errors import FieldError, invalid, required, too_long

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253

_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + r"(\." + _DNS1123_LABEL_FMT + ")*"
_DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE_FMT = "(" + _QUALIFIED_NAME_FMT + ")?"

DNS1123_LABEL_ERR = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
    "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    f"'{_DNS1123_LABEL_FMT}')"
)
DNS1123_SUBDOMAIN_ERR = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    f"'{_DNS1123_SUBDOMAIN_FMT}')"
)
DNS1035_LABEL_ERR = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
    f"validation is '{_DNS1035_LABEL_FMT}')"
)
QUALIFIED_NAME_ERR = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    f"'{_QUALIFIED_NAME_FMT}')"
)
LABEL_VALUE_ERR = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used "
    f"for validation is '{_LABEL_VALUE_FMT}')"
)

_DNS1123_LABEL_RE = re.compile(f"^{_DNS1123_LABEL_FMT}$")
_DNS1123_SUBDOMAIN_RE = re.compile(f"^{_DNS1123_SUBDOMAIN_FMT}$")
_DNS1035_LABEL_RE = re.compile(f"^{_DNS1035_LABEL_FMT}$")
_QUALIFIED_NAME_RE = re.compile(f"^{_QUALIFIED_NAME_FMT}$")
_LABEL_VALUE_RE = re.compile(f"^{_LABEL_VALUE_FMT}$")


def max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


def dns1123_label(value: str) -> list[str]:
    """Problems with `value` as an RFC 1123 label (container names, namespaces)."""
    errs = []
    if len(value) > DNS1123_LABEL_MAX:
        errs.append(max_len_error(DNS1123_LABEL_MAX))
    if not _DNS1123_LABEL_RE.match(value):
        errs.append(DNS1123_LABEL_ERR)
    return errs


def dns1123_subdomain(value: str) -> list[str]:
    """Problems with `value` as an RFC 1123 subdomain (most object names)."""
    errs = []
    if len(value) > DNS1123_SUBDOMAIN_MAX:
        errs.append(max_len_error(DNS1123_SUBDOMAIN_MAX))
    if not _DNS1123_SUBDOMAIN_RE.match(value):
        errs.append(DNS1123_SUBDOMAIN_ERR)
    return errs


def dns1035_label(value: str) -> list[str]:
    """Problems with `value` as an RFC 1035 label (Service names)."""
    errs = []
    if len(value) > DNS1123_LABEL_MAX:
        errs.append(max_len_error(DNS1123_LABEL_MAX))
    if not _DNS1035_LABEL_RE.match(value):
        errs.append(DNS1035_LABEL_ERR)
    return errs


def qualified_name(value: str) -> list[str]:
    """Problems with a label/annotation key (`prefix/name`)."""
    errs: list[str] = []
    prefix, slash, name = value.rpartition("/")
    if slash:
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + e for e in dns1123_subdomain(prefix))
    if not name:
        errs.append("name part must be non-empty")
        return errs
    if len(name) > DNS1123_LABEL_MAX:
        errs.append("name part " + max_len_error(DNS1123_LABEL_MAX))
    if not _QUALIFIED_NAME_RE.match(name):
        errs.append(QUALIFIED_NAME_ERR)
    return errs


def label_value(value: str) -> list[str]:
    errs = []
    if len(value) > DNS1123_LABEL_MAX:
        errs.append(max_len_error(DNS1123_LABEL_MAX))
    if not _LABEL_VALUE_RE.match(value):
        errs.append(LABEL_VALUE_ERR)
    return errs


NameValidator = Callable[[str], list[str]]


def validate_labels(labels: Any, path: str) -> list[FieldError]:
    if labels is None:
        return []
    if not isinstance(labels, dict):
        return [invalid(path, str(labels), "must be a map of string keys to string values")]
    errs: list[FieldError] = []
    for key, value in labels.items():
        errs.extend(invalid(path, key, m) for m in qualified_name(str(key)))
        if not isinstance(value, str):
            errs.append(invalid(f"{path}", value, "label values must be strings"))
            continue
        errs.extend(invalid(path, value, m) for m in label_value(value))
    return errs


def validate_annotations(annotations: Any, path: str) -> list[FieldError]:
    if annotations is None:
        return []
    if not isinstance(annotations, dict):
        return [invalid(path, str(annotations), "must be a map of string keys to string values")]
    errs: list[FieldError] = []
    total = 0
    for key, value in annotations.items():
        errs.extend(invalid(path, key, m) for m in qualified_name(str(key).lower()))
        if not isinstance(value, str):
            errs.append(invalid(path, value, "annotation values must be strings"))
            continue
        total += len(key) + len(value)
    if total > 256 * 1024:
        errs.append(too_long(path, 256 * 1024))
    return errs


def validate_object_meta(
    meta: dict[str, Any], *, namespaced: bool, name_validator: NameValidator
) -> list[FieldError]:
    """ValidateObjectMeta: name (or generateName), namespace presence, labels, annotations."""
    errs: list[FieldError] = []
    name = meta.get("name") or ""
    generate_name = meta.get("generateName") or ""
    if not name and not generate_name:
        errs.append(required("metadata.name", "name or generateName is required"))
    elif name:
        errs.extend(invalid("metadata.name", name, m) for m in name_validator(name))
    elif generate_name:
        # A generated name must be valid too: check the prefix plus a plausible suffix.
        sample = generate_name + "abcde"
        errs.extend(invalid("metadata.generateName", generate_name, m) for m in name_validator(sample))
    namespace = meta.get("namespace") or ""
    if namespaced and not namespace:
        errs.append(required("metadata.namespace"))
    if not namespaced and namespace:
        errs.append(invalid("metadata.namespace", namespace, "not allowed on this type"))
    errs.extend(validate_labels(meta.get("labels"), "metadata.labels"))
    errs.extend(validate_annotations(meta.get("annotations"), "metadata.annotations"))
    finalizers = meta.get("finalizers")
    if finalizers is not None:
        if not isinstance(finalizers, list):
            errs.append(invalid("metadata.finalizers", str(finalizers), "must be a list of strings"))
        else:
            for i, f in enumerate(finalizers):
                errs.extend(invalid(f"metadata.finalizers[{i}]", f, m) for m in qualified_name(str(f)))
    return errs


def port_range_errors(path: str, value: Any, allow_zero: bool = False) -> list[FieldError]:
    """1..65535 inclusive, the InclusiveRangeError wording."""
    if not isinstance(value, int) or isinstance(value, bool):
        return [invalid(path, value, "must be an integer")]
    if allow_zero and value == 0:
        return []
    if not 1 <= value <= 65535:
        return [invalid(path, value, "must be between 1 and 65535, inclusive")]
    return []


def non_negative(path: str, value: Any) -> list[FieldError]:
    if value is None:
        return []
    if not isinstance(value, int) or isinstance(value, bool):
        return [invalid(path, value, "must be an integer")]
    if value < 0:
        return [invalid(path, value, "must be greater than or equal to 0")]
    return []
