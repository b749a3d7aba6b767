"""TypeScript types from the JSON Schema that msgspec makes of a contract's payload types.

:class:`TypeWriter` takes msgspec's schema components (Structs, dataclasses, TypedDicts,
NamedTuples, Enums, each named once) and turns each into a declaration
(``export interface`` or ``export type``), and any schema into a type expression. The wire
is what is typed: field names as they travel (camelCase where the contract renames),
optional fields as ``?``, ``T | null`` for ``Optional``, enums and ``Literal`` as unions of
literals, and the ``Meta`` constraints as JSDoc tags, which TypeScript does not check.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

__all__ = ("RESERVED", "TypeWriter", "doc_comment", "identifier", "property_name")

_KEYWORDS = """
    break case catch class const continue debugger default delete do else enum export extends
    false finally for function if import in instanceof new null return super switch this throw
    true try typeof var void while with implements interface let package private protected
    public static yield await any boolean never number object string symbol unknown bigint
    undefined as async declare is keyof readonly type infer namespace module of
"""
"""The reserved words, strict mode's reserved words and the type keywords."""

_USED = """
    Promise Array Object String Number Boolean Error Record Readonly ReadonlyArray Partial Date Map
    Set JSON Math Symbol globalThis grestws
"""
"""The globals and the namespace that the generated code names."""

RESERVED = frozenset(_KEYWORDS.split() + _USED.split())
"""Names that a generated declaration must not take: they would break the code around it."""

_IDENTIFIER = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")

_FORMATS = {
    "date-time": "RFC 3339 date-time",
    "date": "date, YYYY-MM-DD",
    "time": "time with offset",
    "partial-time": "time",
    "duration": "ISO 8601 duration",
    "uuid": "UUID",
    "decimal": "decimal",
}
"""The comment that a string of a ``format`` carries in its type."""

_CONSTRAINTS = (
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "exclusiveMinimum",
    "maximum",
    "exclusiveMaximum",
    "multipleOf",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
)
"""The JSON Schema keywords of msgspec's ``Meta`` that become JSDoc tags, in this order."""


def identifier(name: str, taken: Iterable[str] = ()) -> str:
    """``name`` made a TypeScript identifier that is not reserved nor in ``taken``: other
    characters become ``_``, and a number is added until it is free."""
    base = re.sub(r"[^A-Za-z0-9_$]", "_", name) or "_"
    if base[0].isdigit():
        base = "_" + base
    used = set(taken)
    candidate = base
    number = 2
    while candidate in RESERVED or candidate in used:
        candidate = f"{base}{number}"
        number += 1
    return candidate


def property_name(name: str) -> str:
    """A wire name as a TypeScript property name: bare when it can be, else quoted."""
    return name if _IDENTIFIER.fullmatch(name) else json.dumps(name)


def doc_comment(lines: Sequence[str], indent: str = "") -> list[str]:
    """A JSDoc comment of ``lines`` (none for no lines); ``*/`` in the text is escaped."""
    text = [line.replace("*/", "*\\/").rstrip() for line in lines]
    while text and not text[-1]:
        text.pop()
    if not text:
        return []
    if len(text) == 1:
        return [f"{indent}/** {text[0]} */"]
    return [f"{indent}/**", *(f"{indent} * {line}".rstrip() for line in text), f"{indent} */"]


def _literal(value: object) -> str:
    return json.dumps(value)


class TypeWriter:
    """TypeScript for msgspec's JSON Schema of a set of types.

    Args:
        components: msgspec's components (``msgspec.json.schema_components``, made with
            ``ref_template="#/$defs/{name}"``).
        taken: Names the declarations must not take.

    Attributes:
        names: The TypeScript name of each component, by its msgspec name.
    """

    def __init__(self, components: Mapping[str, Any], taken: Iterable[str] = ()) -> None:
        self.components: dict[str, Any] = dict(components)
        used = set(taken)
        self.names: dict[str, str] = {}
        for name in sorted(self.components):
            self.names[name] = identifier(name, used)
            used.add(self.names[name])

    def type(self, schema: Any) -> str:
        """The TypeScript type of ``schema``."""
        return self._type(schema)[0]

    def _type(self, schema: Any) -> tuple[str, bool]:
        """The type of ``schema``, and whether it is a union (to parenthesise in ``T[]``)."""
        if not isinstance(schema, dict) or not schema:
            return "unknown", False
        node: dict[str, Any] = schema  # pyright: ignore[reportUnknownVariableType]
        if "$ref" in node:
            ref: str = node["$ref"]
            return self.names[ref.rsplit("/", 1)[-1]], False
        members: list[Any] | None = node.get("anyOf", node.get("oneOf"))
        if members is not None:
            return self._union(self.type(member) for member in members)
        if "enum" in node:
            return self._union(_literal(value) for value in node["enum"])
        if "const" in node:
            return _literal(node["const"]), False
        kind = node.get("type")
        if isinstance(kind, list):
            kinds: list[Any] = kind  # pyright: ignore[reportUnknownVariableType]
            return self._union(self.type({**node, "type": one}) for one in kinds)
        if kind == "null":
            return "null", False
        if kind == "boolean":
            return "boolean", False
        if kind in ("integer", "number"):
            return "number", False
        if kind == "string":
            return self._string(node), False
        if kind == "array":
            return self._array(node), False
        if kind == "object":
            return self._object(node), False
        return "unknown", False

    @staticmethod
    def _union(members: Iterable[str]) -> tuple[str, bool]:
        unique = list(dict.fromkeys(members))
        if "unknown" in unique:
            return "unknown", False
        return " | ".join(unique), len(unique) > 1

    @staticmethod
    def _string(node: Mapping[str, Any]) -> str:
        if node.get("contentEncoding") == "base64":
            return "string /* base64 */"
        described = _FORMATS.get(node.get("format", ""))
        return f"string /* {described} */" if described else "string"

    def _array(self, node: Mapping[str, Any]) -> str:
        prefix: list[Any] | None = node.get("prefixItems")
        items = node.get("items")
        if prefix is not None:
            required = node.get("minItems", len(prefix))
            elements = [
                self.type(item) + ("" if index < required else "?") for index, item in enumerate(prefix)
            ]
            if isinstance(items, dict):
                elements.append(f"...{self._element(items)}[]")
            return f"[{', '.join(elements)}]"
        if isinstance(items, dict):
            return f"{self._element(items)}[]"
        return "unknown[]"

    def _element(self, schema: Any) -> str:
        text, union = self._type(schema)
        return f"({text})" if union or "/*" in text else text

    def _object(self, node: Mapping[str, Any]) -> str:
        properties: dict[str, Any] | None = node.get("properties")
        extra = node.get("additionalProperties")
        parts: list[str] = []
        if properties:
            required = set(node.get("required", ()))
            parts.extend(
                f"{property_name(name)}{'' if name in required else '?'}: {self.type(value)}"
                for name, value in properties.items()
            )
        if isinstance(extra, dict) or (not properties and extra is not False):
            value_type = self.type(extra) if isinstance(extra, dict) else "unknown"
            parts.append(f"[key: string]: {value_type}")
        return "{ " + "; ".join(parts) + " }" if parts else "{}"

    def field_doc(self, schema: Any) -> list[str]:
        """The JSDoc lines of a field: its description, constraints and default."""
        if not isinstance(schema, dict):
            return []
        node: dict[str, Any] = schema  # pyright: ignore[reportUnknownVariableType]
        lines: list[str] = []
        if node.get("description"):
            lines.extend(str(node["description"]).splitlines())
        constrained = node
        members = node.get("anyOf")
        if isinstance(members, list):
            others = [m for m in cast("list[object]", members) if m != {"type": "null"}]
            if len(others) == 1 and isinstance(others[0], dict):
                constrained = cast("dict[str, Any]", others[0])
        structural = "prefixItems" in constrained
        for key in _CONSTRAINTS:
            if key in constrained and not (structural and key in ("minItems", "maxItems")):
                value = constrained[key]
                lines.append(f"@{key}" if value is True else f"@{key} {_literal(value)}")
        if "default" in node:
            lines.append(f"@default {_literal(node['default'])}")
        return lines

    def declarations(self) -> list[str]:
        """Every component as an exported declaration, sorted by name, blank-line separated."""
        out: list[str] = []
        for name in sorted(self.components, key=lambda one: self.names[one]):
            out.extend(self._declaration(self.names[name], self.components[name]))
            out.append("")
        return out

    def _declaration(self, name: str, schema: Mapping[str, Any]) -> list[str]:
        described = str(schema.get("description", "")).splitlines()
        lines = doc_comment(described)
        properties: dict[str, Any] | None = schema.get("properties")
        if schema.get("type") != "object" or properties is None:
            return [*lines, f"export type {name} = {self.type(dict(schema))};"]
        required = set(schema.get("required", ()))
        lines.append(f"export interface {name} {{")
        for field, value in properties.items():
            lines.extend(doc_comment(self.field_doc(value), "  "))
            optional = "" if field in required else "?"
            lines.append(f"  {property_name(field)}{optional}: {self.type(value)};")
        lines.append("}")
        return lines
