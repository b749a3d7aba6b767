"""The access log: one line per call, off by default.

::

    app = grestws.App(interceptors=[AccessLog()])     # or: grestws serve --access-log

Each call a connection serves or makes is logged when it ends, at INFO on the logger
``grestws.access``, as ``key=value`` pairs::

    conn=6f1c... user=ann in ChatApi.sendMessage request id=3 OK 0.84ms
    conn=6f1c... user=ann in ChatApi.sendMessage request id=4 SERVER_ERROR ref=1d2e... 1.02ms
    conn=6f1c... user=ann out ChatApi.areYouThere request TIMEOUT 2000.31ms

The same fields are on the log record (``record.grestws``, a dict: ``side``,
``direction``, ``connection``, ``user``, ``method``, ``kind``, ``request_id``,
``duration_ms``, ``result``, ``ref``) for a JSON formatter. Nothing of a payload is logged.
Calls refused before a handler ran (invalid, not permitted, over a limit) are incidents,
logged by the App's throttled incident log instead.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from grestws.contract.envelopes import ref_of
from grestws.exceptions import ApiError
from grestws.interceptors import Call, Proceed, outcome

__all__ = ("ACCESS_LOGGER", "AccessLog")

ACCESS_LOGGER = logging.getLogger("grestws.access")


class AccessLog:
    """An interceptor that logs every call it sees when it ends.

    Args:
        logger: Where the lines go (``grestws.access``).
        level: Their level (INFO).

    Concurrency: any number of calls at once; each logs one line from its own task.
    """

    def __init__(self, logger: logging.Logger = ACCESS_LOGGER, level: int = logging.INFO) -> None:
        self.logger = logger
        self.level = level

    async def __call__(self, call: Call, proceed: Proceed) -> Any:
        if not self.logger.isEnabledFor(self.level):
            return await proceed()
        started = time.perf_counter()
        error: BaseException | None = None
        try:
            return await proceed()
        except BaseException as exc:
            error = exc
            raise
        finally:
            self._log(call, error, (time.perf_counter() - started) * 1000)

    def _log(self, call: Call, error: BaseException | None, duration_ms: float) -> None:
        result = outcome(error)
        ref = None
        if isinstance(error, ApiError):
            ref = error.ref
        elif error is not None and result == "SERVER_ERROR":
            ref = ref_of(error)
        identity = call.identity
        fields = {
            "side": call.side,
            "direction": call.direction,
            "connection": call.connection.id,
            "user": None if identity is None else identity.id,
            "method": call.path,
            "kind": call.method.kind.value,
            "request_id": call.request_id,
            "duration_ms": round(duration_ms, 3),
            "result": result,
            "ref": ref,
        }
        direction = "in" if call.direction == "incoming" else "out"
        self.logger.log(
            self.level,
            "conn=%s%s %s %s %s%s %s%s %.2fms",
            call.connection.id,
            "" if identity is None else f" user={identity.id:.100}",
            direction,
            call.path,
            fields["kind"],
            "" if call.request_id is None else f" id={call.request_id}",
            result,
            "" if ref is None else f" ref={ref}",
            duration_ms,
            extra={"grestws": fields},
        )
