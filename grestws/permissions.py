"""Permissions: what an identity needs to open a connection or call a method. No I/O.

A client-to-server method declares the permission it needs; a schema may declare one for
the connection itself::

    @grestws.request(permission=Scope("chat:admin"))
    async def delete_message(self, req: DeleteRequest) -> None: ...

    ChatApi = ChatContract.at("/ws/chat", permission=Scope("chat:use"))

The connection's identity, and so its scopes, are resolved once, at the handshake, by a
middleware's ``identify`` hook, and kept for the connection's life. Each call is checked
before its input is validated: no identity answers NOT_AUTHORIZED, a missing scope
FORBIDDEN, and the socket stays open.
"""

from __future__ import annotations

import msgspec

from grestws.exceptions import ContractError

__all__ = (
    "PUBLIC",
    "AllOf",
    "AnyOf",
    "Identity",
    "Permission",
    "Scope",
    "permission_from_builtins",
    "permission_to_builtins",
)

MAX_DEPTH = 8
"""How deeply ``AllOf`` / ``AnyOf`` may nest."""


class Identity(msgspec.Struct, frozen=True):
    """Who a connection acts for: an ``id`` (a user id, a service name) and its scopes."""

    id: str
    scopes: frozenset[str] = frozenset()


class Permission:
    """What a call needs. Use :data:`PUBLIC`, :class:`Scope`, :class:`AllOf`, :class:`AnyOf`."""

    __slots__ = ("depth",)

    depth: int

    def allows(self, identity: Identity | None) -> bool:
        """Whether ``identity`` (``None``: no identity) may make the call."""
        raise NotImplementedError

    @property
    def public(self) -> bool:
        """True when the call needs no identity at all."""
        return False


class _Public(Permission):
    __slots__ = ()

    def __init__(self) -> None:
        self.depth = 0

    def allows(self, identity: Identity | None) -> bool:
        return True

    @property
    def public(self) -> bool:
        return True

    def __repr__(self) -> str:
        return "PUBLIC"


PUBLIC: Permission = _Public()
"""Anyone may call, with or without an identity."""


class Scope(Permission):
    """The identity must hold this scope: ``Scope("chat:admin")``."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        if not name:
            raise ContractError("a scope has a name")
        self.name = name
        self.depth = 0

    def allows(self, identity: Identity | None) -> bool:
        return identity is not None and self.name in identity.scopes

    def __repr__(self) -> str:
        return f"Scope({self.name!r})"


class _Group(Permission):
    __slots__ = ("parts",)

    def __init__(self, *parts: Permission) -> None:
        if not parts:
            raise ContractError(f"{type(self).__name__} needs at least one permission")
        for part in parts:
            if not isinstance(part, Permission):  # pyright: ignore[reportUnnecessaryIsInstance]
                raise ContractError(f"{part!r} is not a permission")
        self.parts: tuple[Permission, ...] = parts
        self.depth = 1 + max(part.depth for part in parts)
        if self.depth > MAX_DEPTH:
            raise ContractError(f"permissions nest at most {MAX_DEPTH} deep")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(map(repr, self.parts))})"


class AllOf(_Group):
    """Every one of the permissions: ``AllOf(Scope("a"), Scope("b"))``."""

    __slots__ = ()

    def allows(self, identity: Identity | None) -> bool:
        return all(part.allows(identity) for part in self.parts)

    @property
    def public(self) -> bool:
        return all(part.public for part in self.parts)


class AnyOf(_Group):
    """At least one of the permissions: ``AnyOf(Scope("admin"), Scope("moderator"))``."""

    __slots__ = ()

    def allows(self, identity: Identity | None) -> bool:
        return any(part.allows(identity) for part in self.parts)

    @property
    def public(self) -> bool:
        return any(part.public for part in self.parts)


def permission_to_builtins(permission: Permission) -> object:
    """``permission`` as plain data, to send to another process: ``"*"`` for PUBLIC, a
    scope's name, ``{"all": [...]}`` or ``{"any": [...]}``."""
    if isinstance(permission, Scope):
        return permission.name
    if isinstance(permission, AllOf):
        return {"all": [permission_to_builtins(part) for part in permission.parts]}
    if isinstance(permission, AnyOf):
        return {"any": [permission_to_builtins(part) for part in permission.parts]}
    return "*"


def permission_from_builtins(data: object) -> Permission:
    """The permission :func:`permission_to_builtins` gave ``data`` for.

    Raises:
        ContractError: ``data`` describes no permission.
    """
    if data == "*":
        return PUBLIC
    if isinstance(data, str):
        return Scope(data)
    if isinstance(data, dict) and len(data) == 1:  # pyright: ignore[reportUnknownArgumentType]
        (kind, parts), *_ = data.items()  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        if kind in ("all", "any") and isinstance(parts, list):
            group = AllOf if kind == "all" else AnyOf
            items: list[object] = parts  # pyright: ignore[reportUnknownVariableType]
            return group(*(permission_from_builtins(part) for part in items))
    raise ContractError(f"not a permission: {data!r:.100}")
