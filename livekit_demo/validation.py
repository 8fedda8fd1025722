"""Request bodies declared once, as data: validated here and described in the served OpenAPI document.

The rules are SPEC section 1's "Input rules": unknown fields are dropped unread, `null` counts as
absent, an empty string counts as missing for a required field, types are strict (no `true` for an
integer, no `"1"` for a number), and one 400 names every bad field by its path.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .exceptions import BadRequest, FieldProblem
from .types import JSONDict

__all__ = [
    "Field",
    "Schema",
    "user_id_problem",
    "rtc_id_problem",
    "USER_ID_RULE",
    "RTC_ID_RULE",
    "text_problem",
    "shown",
]

_FORBIDDEN_IN_IDS = set('/?#&%\\"\'')
USER_ID_RULE = "1 to 64 characters, no whitespace or control characters, none of / ? # & % \\ \" '"
RTC_ID_RULE = "only A-Z a-z 0-9 _ - = (the RTC service's rule for co-streaming user ids)"
_RTC_ID = re.compile(r"[A-Za-z0-9_\-=]{1,64}")


def user_id_problem(value: str) -> str | None:
    """Why `value` is not a usable user id (it ends up in URLs), or None."""
    if not 1 <= len(value) <= 64:
        return f"must be {USER_ID_RULE}; it has {len(value)} characters"
    for ch in value:
        if ch.isspace() or not ch.isprintable():
            return f"must be {USER_ID_RULE}; it contains whitespace or a control character"
        if ch in _FORBIDDEN_IN_IDS:
            return f"must be {USER_ID_RULE}; it contains {ch!r}"
    return None


def text_problem(value: str) -> str | None:
    """Why `value` is not text every engine can store, or None.

    PostgreSQL's text types cannot hold NUL (U+0000); refusing it here for every engine keeps the
    answer the same whichever database is behind the server (one rule, not a 500 on one engine).
    """
    if "\x00" in value:
        return "must not contain the NUL character (U+0000)"
    return None


_SHOWN_CHARS = 40


def shown(value: Any) -> str:
    """`value` as a message quotes it, cut to a few dozen characters so a huge input is not echoed back."""
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else f"{text[: _SHOWN_CHARS - 3]}... ({len(str(value))} characters)"


def rtc_id_problem(value: str) -> str | None:
    """Why `value` cannot join co-streaming, or None."""
    return None if _RTC_ID.fullmatch(value) else f"must use {RTC_ID_RULE}, 1 to 64 of them"


_JSON_TYPES = {"string": "string", "integer": "integer", "boolean": "boolean", "array": "array", "object": "object"}


@dataclass(frozen=True)
class Field:
    """One field of a request body."""

    name: str
    kind: str  # string | integer | boolean | array (of strings, or of `items` objects)
    required: bool = False
    description: str = ""
    max_length: int | None = None  # characters, for strings
    max_bytes: int | None = None  # UTF-8 bytes, for strings
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[Any, ...] | None = None
    max_items: int | None = None
    items: Schema | None = None  # for arrays of objects
    check: Callable[[Any], str | None] | None = None  # a rule beyond the type; returns the problem
    default: Any = None
    example: Any = None

    def validate(self, value: Any, path: str, problems: list[FieldProblem]) -> Any:
        """The clean value, or None after adding to `problems`."""
        kind = self.kind
        if kind == "string":
            if not isinstance(value, str):
                return _bad(problems, path, f"must be a string, not {_json_type(value)}")
            if problem := text_problem(value):
                return _bad(problems, path, problem)
            if self.max_length is not None and len(value) > self.max_length:
                return _bad(problems, path, f"must be at most {self.max_length} characters, not {len(value)}")
            if self.max_bytes is not None and len(value.encode("utf-8")) > self.max_bytes:
                return _bad(problems, path, f"must be at most {self.max_bytes} bytes of UTF-8")
        elif kind == "integer":
            if not isinstance(value, int) or isinstance(value, bool):
                return _bad(problems, path, f"must be an integer, not {_json_type(value)}")
            if self.minimum is not None and value < self.minimum:
                return _bad(problems, path, f"must be at least {self.minimum}, not {shown(value)}")
            if self.maximum is not None and value > self.maximum:
                return _bad(problems, path, f"must be at most {self.maximum}, not {shown(value)}")
        elif kind == "boolean":
            if not isinstance(value, bool):
                return _bad(problems, path, f"must be true or false, not {_json_type(value)}")
        elif kind == "array":
            if not isinstance(value, list):
                return _bad(problems, path, f"must be an array, not {_json_type(value)}")
            if self.max_items is not None and len(value) > self.max_items:
                return _bad(problems, path, f"must have at most {self.max_items} items, not {len(value)}")
            value = self._validate_items(value, path, problems)
            if value is None:
                return None
        if self.choices is not None and value not in self.choices:
            return _bad(problems, path, f"must be one of {', '.join(map(str, self.choices))}, not {shown(value)}")
        if self.check is not None:
            problem = self.check(value)
            if problem:
                return _bad(problems, path, problem)
        return value

    def _validate_items(self, values: list[Any], path: str, problems: list[FieldProblem]) -> list[Any] | None:
        before = len(problems)
        clean: list[Any] = []
        for i, item in enumerate(values):
            where = f"{path}[{i}]"
            if self.items is not None:
                clean.append(self.items.validate_object(item, where, problems))
            elif not isinstance(item, str):
                _bad(problems, where, f"must be a string, not {_json_type(item)}")
            elif problem := text_problem(item):
                _bad(problems, where, problem)
            else:
                clean.append(item)
        return clean if len(problems) == before else None

    def openapi(self) -> JSONDict:
        """This field as a JSON Schema property."""
        schema: JSONDict = {"type": _JSON_TYPES[self.kind]}
        if self.kind == "array":
            schema["items"] = self.items.openapi() if self.items is not None else {"type": "string"}
            if self.max_items is not None:
                schema["maxItems"] = self.max_items
        if self.max_length is not None:
            schema["maxLength"] = self.max_length
        if self.minimum is not None:
            schema["minimum"] = self.minimum
        if self.maximum is not None:
            schema["maximum"] = self.maximum
        if self.choices is not None:
            schema["enum"] = list(self.choices)
        if self.description:
            schema["description"] = self.description
        if self.default is not None:
            schema["default"] = self.default
        if self.example is not None:
            schema["example"] = self.example
        if self.required and self.kind == "string":
            schema["minLength"] = 1
        if not self.required:
            # Null counts as absent (the Android client sends `extends: null`); the document says so,
            # or a schema-driven client or fuzzer takes the accepted null for a bug.
            schema["type"] = [schema["type"], "null"]
            if "enum" in schema:
                schema["enum"].append(None)
        return schema


@dataclass(frozen=True)
class Schema:
    """A request body (or a nested object such as a meeting member)."""

    name: str
    fields: tuple[Field, ...]
    description: str = ""
    defaults: dict[str, Any] = field(default_factory=dict)  # filled in for absent fields of nested objects

    def validate(self, body: Any) -> JSONDict:
        """The body's declared fields, clean; `BadRequest` naming every bad field."""
        problems: list[FieldProblem] = []
        clean = self.validate_object(body, "", problems)
        if problems:
            raise BadRequest.for_fields(problems)
        return clean

    def validate_object(self, value: Any, path: str, problems: list[FieldProblem]) -> JSONDict:
        if not isinstance(value, dict):
            _bad(problems, path or "body", f"must be a JSON object, not {_json_type(value)}")
            return {}
        clean: JSONDict = {}  # in the declared order, so answers list fields as the contract does
        for spec in self.fields:
            where = f"{path}.{spec.name}" if path else spec.name
            raw = value.get(spec.name)  # unknown keys are never looked at
            if raw is None or (spec.required and raw == ""):
                if spec.required:
                    _bad(problems, where, "is required" if raw is None else "is required and must not be empty")
                elif spec.name in self.defaults:
                    clean[spec.name] = self.defaults[spec.name]
                continue
            checked = spec.validate(raw, where, problems)
            if checked is not None:
                clean[spec.name] = checked
        return clean

    def openapi(self) -> JSONDict:
        """This body as a JSON Schema object."""
        schema: JSONDict = {
            "type": "object",
            "properties": {f.name: f.openapi() for f in self.fields},
        }
        required = [f.name for f in self.fields if f.required]
        if required:
            schema["required"] = required
        if self.description:
            schema["description"] = self.description
        return schema


def _bad(problems: list[FieldProblem], path: str, problem: str) -> None:
    problems.append({"field": path, "problem": problem})
    return None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"integer {shown(value)}"
    if isinstance(value, float):
        return f"number {value!r}"
    if isinstance(value, str):
        return f"string {value[:40]!r}"
    if isinstance(value, list):
        return "an array"
    return "an object"
