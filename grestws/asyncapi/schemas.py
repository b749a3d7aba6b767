"""The JSON Schemas of an AsyncAPI document: payload types described by msgspec, and the
envelopes and frames of the wire protocol.

msgspec writes JSON Schema 2020-12 (with OpenAPI's ``discriminator``); the AsyncAPI 3.0
Schema Object is a superset of draft 07, so :func:`draft07` rewrites what differs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, cast

import msgspec

__all__ = (
    "FRAME_NAMES",
    "SCHEMAS",
    "PayloadSchemas",
    "component_name",
    "draft07",
    "error_context",
    "error_envelope",
    "frame_headers",
    "result_envelope",
)

SCHEMAS = "#/components/schemas/"
"""Where the document's schemas are, as the start of a ``$ref``."""

_COMPONENT_NAME = re.compile(r"^[A-Za-z0-9.\-_]+$")

FRAME_NAMES = {
    "h": "HANDSHAKE",
    "k": "HANDSHAKE_OK",
    "x": "HANDSHAKE_ERR",
    "m": "MSG",
    "r": "REQ",
    "s": "RES",
    "p": "PING",
    "o": "PONG",
}


class PayloadSchemas:
    """The JSON Schemas of payload types, described by msgspec all at once, so that each
    named type (a Struct, an enum, a TypedDict...) is one component every payload refers to.

    Args:
        types: The types, in the order they are met (duplicates are fine).

    Attributes:
        components: The named types' schemas by component name (``SendMessageRequest``;
            ``module.Name`` when two types share a name).
    """

    def __init__(self, types: Sequence[Any]) -> None:
        unique = list({id(tp): tp for tp in types}.values())
        described, components = msgspec.json.schema_components(
            unique, schema_hook=_custom_type, ref_template=SCHEMAS + "{name}"
        )
        renames = {name: component_name(name) for name in components}
        self._described = {
            id(tp): draft07(schema, renames) for tp, schema in zip(unique, described, strict=True)
        }
        self.components: dict[str, Any] = {
            renames[name]: draft07(schema, renames) for name, schema in components.items()
        }

    def of(self, tp: Any) -> Any:
        """The schema of one of the types: a ``$ref`` to its component for a named type."""
        return self._described[id(tp)]

    def inline(self, tp: Any) -> dict[str, Any]:
        """The schema of one of the types with a top-level ``$ref`` replaced by its component."""
        schema: dict[str, Any] = self.of(tp)
        ref = schema.get("$ref", "")
        if isinstance(ref, str) and ref.startswith(SCHEMAS):
            return dict(self.components[ref.removeprefix(SCHEMAS)])
        return dict(schema)


def component_name(name: str) -> str:
    """``name`` as a component key AsyncAPI takes (``^[A-Za-z0-9.\\-_]+$``)."""
    return name if _COMPONENT_NAME.match(name) else re.sub(r"[^A-Za-z0-9.\-_]", "_", name)


def _custom_type(tp: Any) -> dict[str, Any]:
    """The schema of a type msgspec encodes with a hook: any value, described by name."""
    name = getattr(tp, "__qualname__", repr(tp))
    return {"description": f"A {name}: a type the application encodes itself; not described."}


# Keywords whose values are schemas, lists of schemas or maps of schemas. The rest
# (``default``, ``enum``, ``examples``, ``const``...) are data and stay as they are.
_SUBSCHEMA = frozenset(
    {"items", "additionalItems", "additionalProperties", "not", "contains", "propertyNames"}
)
_SUBSCHEMA_LISTS = frozenset({"anyOf", "oneOf", "allOf"})
_SUBSCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions"})


def draft07(schema: Any, renames: Mapping[str, str]) -> Any:
    """msgspec's ``schema`` as the AsyncAPI Schema Object takes it: ``prefixItems`` become
    ``items`` (a list) and ``additionalItems``; the ``discriminator`` object is dropped
    (AsyncAPI's is a property name with other rules, and each variant's tag is a one-value
    enum already); references follow ``renames``; data in it (defaults, examples) is made
    of JSON types only."""
    if not isinstance(schema, dict):
        return schema
    source = cast("dict[str, Any]", schema)
    out: dict[str, Any] = {}
    for key, value in source.items():
        if key == "$ref" and isinstance(value, str) and value.startswith(SCHEMAS):
            name = value.removeprefix(SCHEMAS)
            out[key] = SCHEMAS + renames.get(name, name)
        elif key == "discriminator" and isinstance(value, dict):
            continue
        elif key == "prefixItems" and isinstance(value, list):
            out["items"] = _each(value, renames)
            rest = source.get("items", True)
            if rest is not True:
                out["additionalItems"] = draft07(rest, renames)
        elif key == "items" and "prefixItems" in source:
            continue
        elif key in _SUBSCHEMA:
            out[key] = draft07(value, renames)
        elif key in _SUBSCHEMA_LISTS and isinstance(value, list):
            out[key] = _each(value, renames)
        elif key in _SUBSCHEMA_MAPS and isinstance(value, dict):
            subschemas = cast("dict[str, Any]", value)
            out[key] = {name: draft07(item, renames) for name, item in subschemas.items()}
        else:  # data (a default, an enum's values...): tuples become lists
            out[key] = (
                msgspec.json.decode(msgspec.json.encode(value))
                if isinstance(value, (tuple, list, dict))
                else value
            )
    return out


def _each(schemas: Any, renames: Mapping[str, str]) -> list[Any]:
    """``draft07`` of each schema of a list."""
    return [draft07(schema, renames) for schema in schemas]


# -- the wire protocol's own shapes ------------------------------------------------------------


def error_context() -> dict[str, Any]:
    """The ``context`` of an error envelope."""
    return {
        "type": "object",
        "title": "Error context",
        "description": "Optional details of an error; a reader must not require any of them.",
        "properties": {
            "displayMessage": {"type": "string", "description": "A message to show to a person."},
            "timestamp": {
                "type": "integer",
                "description": "When the error was raised, in ms since the epoch.",
            },
            "ref": {"type": "string", "description": "An opaque id of the logged details (SERVER_ERROR)."},
        },
    }


def error_envelope(
    title: str, description: str, type_schema: Any, status_schema: Any, data: Any, context: str
) -> dict[str, Any]:
    """An error envelope; ``data`` is the schema of its data (``None``: it has none) and
    ``context`` the component name of :func:`error_context`."""
    properties: dict[str, Any] = {
        "success": {"const": False},
        "type": type_schema,
        "statusCode": status_schema,
    }
    if data is not None:
        properties["data"] = data
    properties["context"] = {"$ref": SCHEMAS + context}
    return {
        "type": "object",
        "title": title,
        "description": description,
        "properties": properties,
        "required": ["success", "type"],
    }


def result_envelope(title: str, data: Any) -> dict[str, Any]:
    """The success envelope of an answer; ``data`` is the schema of the method's result,
    ``None`` for a method that returns nothing (the envelope then has no ``data``)."""
    envelope: dict[str, Any] = {
        "type": "object",
        "title": title,
        "properties": {"success": {"const": True}, "type": {"const": "OK"}},
        "required": ["success", "type"],
    }
    if data is not None:
        envelope["properties"]["data"] = data
        envelope["required"].append("data")
    return envelope


def frame_headers(letter: str) -> dict[str, Any]:
    """The fields of a frame of type ``letter`` before its data, as a message's headers."""
    properties: dict[str, Any] = {"type": {"const": letter, "description": "The frame type."}}
    required = ["type"]
    if letter in ("r", "s", "m"):
        properties["path"] = {
            "type": "string",
            "description": "The routing key `<Contract>.<method>`: the message's `name`.",
        }
        required.append("path")
    if letter in ("r", "s"):
        properties["id"] = {
            "type": "string",
            "pattern": "^[1-9][0-9]*$",
            "description": "The request id, numbered from 1 by the side that sends the `r`; "
            "the `s` that answers it carries the same.",
        }
        required.append("id")
    elif letter == "m":
        properties["id"] = {
            "type": "string",
            "description": "Empty; a push of a server with recovery carries its position `<node>.<seq>`.",
        }
    return {
        "type": "object",
        "title": f"{FRAME_NAMES[letter]} frame",
        "description": "The fields of the frame `<type>:<path>:<id>:<data>` before the data (not JSON).",
        "properties": properties,
        "required": required,
    }
