"""Declaring socket contracts: methods, errors, schemas and their typed codecs. No I/O."""

from __future__ import annotations

from grestws.contract.contract import Caller, ContractHalf, SocketContract, SocketSchema
from grestws.contract.methods import MethodKind, MethodSpec, notify, request, unwatch, watch

__all__ = (
    "Caller",
    "ContractHalf",
    "MethodKind",
    "MethodSpec",
    "SocketContract",
    "SocketSchema",
    "notify",
    "request",
    "unwatch",
    "watch",
)
