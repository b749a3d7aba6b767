"""The API file of one contract: its payload types, its error classes, the interfaces of
both halves, and a client class for each schema it is served at.

The file imports the runtime (``grestws-runtime.ts``) as a namespace, so that no name of
the contract can clash with one of the runtime's, and exports the runtime again, so that
an application imports everything from its API file.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Sequence
from typing import Any

import msgspec

from grestws.contract import MethodKind, MethodSpec, SocketContract, SocketSchema
from grestws.contract.contract import ContractHalf
from grestws.contract.methods import camel
from grestws.exceptions import STANDARD_ERRORS, ApiError
from grestws.typescript.types import RESERVED, TypeWriter, doc_comment, identifier, property_name

__all__ = ("RUNTIME_MODULE", "ApiFile", "file_stem")

RUNTIME_MODULE = "grestws-runtime"
"""The runtime's file name without ``.ts``."""

_IDENTIFIER = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")


def file_stem(contract_name: str) -> str:
    """The API file's name without ``.ts``: the contract's name in kebab case, ending in
    ``-api`` (``ChatApi`` -> ``chat-api``, ``Ticker`` -> ``ticker-api``)."""
    words = re.sub(r"([a-z0-9])([A-Z])|([A-Z])([A-Z][a-z])", r"\1\3-\2\4", contract_name)
    stem = re.sub(r"[^a-z0-9]+", "-", words.lower()).strip("-") or "contract"
    return stem if stem == "api" or stem.endswith("-api") else f"{stem}-api"


def _pascal(text: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", text) if part)


def _doc(obj: object) -> list[str]:
    """The docstring of a stub or a class, cleaned, as lines."""
    # A class's own docstring only: inspect.getdoc would give Protocol's or ApiError's.
    text = obj.__dict__.get("__doc__") if isinstance(obj, type) else getattr(obj, "__doc__", None)
    return inspect.cleandoc(text).splitlines() if text else []


class _Error:
    """A declared application error and its TypeScript class."""

    def __init__(self, cls: type[ApiError[Any]], name: str, data: str) -> None:
        self.cls = cls
        self.name = name
        self.data = data


class ApiFile:
    """The TypeScript of one contract served at ``schemas`` (one or more paths).

    Args:
        contract: The contract.
        schemas: Its schemas, sorted by path.
    """

    def __init__(
        self, contract: SocketContract[Any, Any], schemas: Sequence[SocketSchema[Any, Any, Any]]
    ) -> None:
        self.contract = contract
        self.schemas = list(schemas)
        halves = (contract.client_to_server, contract.server_to_client)
        specs = [spec for half in halves for spec in half]
        declared = sorted(
            {cls.type: cls for spec in specs for cls in spec.explicit_error_classes}.values(),
            key=lambda cls: cls.type,
        )
        own = [cls for cls in declared if STANDARD_ERRORS.get(cls.type) is not cls]
        self.standard = {cls.type: cls.__name__ for cls in declared if STANDARD_ERRORS.get(cls.type) is cls}

        types: list[Any] = []
        for spec in specs:
            if spec.has_input:
                types.append(spec.input_type)
            if spec.has_result:
                types.append(spec.result_type)
        types.extend(cls.data_type for cls in own if cls.data_type is not None)
        types.extend(schema.query for schema in self.schemas if schema.query is not None)
        found, components = msgspec.json.schema_components(types, ref_template="#/$defs/{name}")
        self._schemas = list(found)
        self._types = types

        self.writer = TypeWriter(components)
        used = set(self.writer.names.values())
        self.outgoing_name = identifier(_protocol_name(contract.client_to_server), used)
        used.add(self.outgoing_name)
        self.incoming_name = identifier(_protocol_name(contract.server_to_client), used)
        used.add(self.incoming_name)
        self.errors: list[_Error] = []
        for cls in own:
            base = cls.__name__ if cls.__name__.endswith("Error") else f"{cls.__name__}Error"
            name = identifier(base, used)
            used.add(name)
            data = "unknown" if cls.data_type is None else self._type_of(cls.data_type)
            self.errors.append(_Error(cls, name, data))
        self.error_names = {error.cls.type: error.name for error in self.errors}
        self.clients: list[tuple[SocketSchema[Any, Any, Any], str]] = []
        for schema in self.schemas:
            base = contract.name if len(self.schemas) == 1 else contract.name + _pascal(schema.path)
            stem = identifier(base, used)
            for suffix in ("Client", "Options", "Schema"):
                used.add(stem + suffix)
            used.add("connect" + stem)
            self.clients.append((schema, stem))

    def _type_of(self, tp: Any) -> str:
        for index, known in enumerate(self._types):
            if known is tp:
                return self.writer.type(self._schemas[index])
        raise LookupError(tp)  # pragma: no cover - every type was given to msgspec

    # -- rendering ---------------------------------------------------------------------

    def render(self, header: Sequence[str]) -> str:
        """The file's text, ``header`` (comment lines) first."""
        lines = [*header, ""]
        lines.append(f'import * as grestws from "./{RUNTIME_MODULE}.js";')
        lines.append(f'export * from "./{RUNTIME_MODULE}.js";')
        lines.append("")
        declarations = self.writer.declarations()
        if declarations:
            lines.append("// -- payload types " + "-" * 70)
            lines.append("")
            lines.extend(declarations)
        if self.errors:
            lines.append("// -- errors " + "-" * 77)
            lines.append("")
            for error in self.errors:
                lines.extend(self._error_class(error))
                lines.append("")
        lines.append("// -- the contract " + "-" * 71)
        lines.append("")
        lines.extend(self._outgoing())
        lines.append("")
        lines.extend(self._incoming())
        lines.append("")
        for schema, stem in self.clients:
            lines.extend(self._client(schema, stem))
            lines.append("")
        while lines and not lines[-1]:
            lines.pop()
        return "\n".join(lines) + "\n"

    def _error_class(self, error: _Error) -> list[str]:
        cls = error.cls
        doc = _doc(cls) or [f"{cls.type} ({cls.status_code})"]
        return [
            *doc_comment(doc),
            f"export class {error.name} extends grestws.ApiError<{error.data}> {{",
            f"  static override readonly TYPE = {json.dumps(cls.type)};",
            f"  static override readonly STATUS_CODE = {int(cls.status_code)};",
            f"  declare readonly type: {json.dumps(cls.type)};",
            "}",
        ]

    def _param(self, spec: MethodSpec) -> str:
        if not spec.has_input:
            return ""
        name = camel(spec.param_name or "arg")
        if not _IDENTIFIER.fullmatch(name) or name in RESERVED:
            name = "arg"
        return f"{name}: {self._type_of(spec.input_type)}"

    def _result(self, spec: MethodSpec) -> str:
        return self._type_of(spec.result_type) if spec.has_result else "void"

    def _throws(self, spec: MethodSpec) -> list[str]:
        lines: list[str] = []
        for cls in sorted(spec.explicit_error_classes, key=lambda one: one.type):
            name = self.error_names.get(cls.type) or f"grestws.{self.standard.get(cls.type, 'ApiError')}"
            lines.append(f"@throws {{{name}}} {cls.type} ({cls.status_code})")
        return lines

    def _outgoing(self) -> list[str]:
        half = self.contract.client_to_server
        lines = [*doc_comment(_doc(half.protocol)), f"export interface {self.outgoing_name} {{"]
        for spec in half:
            returns = f"Promise<{self._result(spec)}>"
            doc = _doc(spec.function)
            extra = self._throws(spec)
            if spec.kind is MethodKind.NOTIFY:
                extra.insert(0, "Fire-and-forget: resolves once the frame is sent.")
            elif spec.idempotent:
                extra.insert(0, "Idempotent: sent again on the next connection after a drop.")
            lines.extend(doc_comment([*doc, *([""] if doc and extra else []), *extra], "  "))
            lines.append(f"  {property_name(spec.wire_name)}({self._param(spec)}): {returns};")
        lines.append("}")
        return lines

    def _incoming(self) -> list[str]:
        half = self.contract.server_to_client
        doc = _doc(half.protocol)
        note = "Handlers for the server's calls; a request without one is answered ROUTE_NOT_FOUND."
        lines = [
            *doc_comment([*doc, *([""] if doc else []), note]),
            f"export interface {self.incoming_name} {{",
        ]
        for spec in half:
            result = self._result(spec) if spec.kind is MethodKind.REQUEST else "void"
            lines.extend(doc_comment([*_doc(spec.function), *self._throws(spec)], "  "))
            lines.append(
                f"  {property_name(spec.wire_name)}?({self._param(spec)}): {result} | Promise<{result}>;"
            )
        lines.append("}")
        return lines

    def _methods(self, half: ContractHalf) -> list[str]:
        lines: list[str] = []
        for spec in half:
            info = {
                "name": spec.wire_name,
                "path": spec.path,
                "request": spec.kind is MethodKind.REQUEST,
                "input": spec.has_input,
                "result": spec.has_result,
                "idempotent": spec.idempotent,
                "errors": sorted(cls.type for cls in spec.explicit_error_classes),
            }
            fields = ", ".join(f"{key}: {json.dumps(value)}" for key, value in info.items())
            lines.append(f"    {{ {fields} }},")
        return lines

    def _client(self, schema: SocketSchema[Any, Any, Any], stem: str) -> list[str]:
        contract = self.contract
        query = "grestws.NoQuery" if schema.query is None else self._type_of(schema.query)
        generics = f"{self.outgoing_name}, {self.incoming_name}, {query}"
        errors = ", ".join(f"{json.dumps(error.cls.type)}: {error.name}" for error in self.errors)
        return [
            f"/** {contract.name} at {schema.path}: what the client and its server say to each other. */",
            f"export const {stem}Schema: grestws.SchemaInfo = {{",
            f"  contract: {json.dumps(contract.name)},",
            f"  path: {json.dumps(schema.path)},",
            "  outgoing: [",
            *self._methods(contract.client_to_server),
            "  ],",
            "  incoming: [",
            *self._methods(contract.server_to_client),
            "  ],",
            f"  errors: {{ {errors} }}," if errors else "  errors: {},",
            "};",
            "",
            f"/** The options of a {stem}Client. */",
            f"export type {stem}Options = grestws.ClientOptions<{generics}>;",
            "",
            *doc_comment(
                [
                    f"A client of {contract.name} at {schema.path}: `outgoing` calls the server, the",
                    "`handlers` option answers it. It reconnects by itself after a drop.",
                ]
            ),
            f"export class {stem}Client extends grestws.Client<{generics}> {{",
            f"  static readonly path = {json.dumps(schema.path)};",
            "",
            f"  constructor(url: string | readonly string[], options: {stem}Options = {{}}) {{",
            f"    super({stem}Schema, url, options);",
            "  }",
            "}",
            "",
            *doc_comment(
                [
                    f"Connect to {contract.name} at {schema.path} on the server at `url` (its base URL,",
                    "`ws://host:port`, or several, tried in turn).",
                ]
            ),
            f"export function connect{stem}(",
            "  url: string | readonly string[],",
            f"  options: {stem}Options = {{}},",
            f"): Promise<{stem}Client> {{",
            f"  return new {stem}Client(url, options).connect();",
            "}",
        ]


def _protocol_name(half: ContractHalf) -> str:
    return half.protocol.__name__
