"""One step of a call (a request, a retry's wait, the wait for a stream's next piece) under
the call's deadline and the client's close: `CallStep`, a context manager.

It stands on an anyio cancel scope, whose cancellation is delivered again at every wait
until the step ends: a library in the request that swallows one cancellation cannot
outlive the deadline (`asyncio.timeout` cancels once, and a trickling answer outlived it).
The step is a class, not a generator: one is entered on every call.
"""

from __future__ import annotations

from types import TracebackType
from typing import Protocol

import anyio

from model_registry.errors import RequestTimeoutError

__all__ = ["CallStep", "StepOwner", "close_steps"]


class StepOwner(Protocol):
    """What a step needs of its client: its open check, its steps in flight, its name."""

    _steps: set[anyio.CancelScope]
    _steps_drained: anyio.Event | None
    provider: str
    model_id: str

    def _check_open(self) -> None: ...


class CallStep:
    """`with CallStep(client, deadline, timeout):` one step of a call.

    Raises ClientClosedError (the client's `_check_open`) if the client is closed before
    or during the step, and RequestTimeoutError once `deadline` (anyio's clock; `math.inf`
    for none) passes: `timeout` bounds the whole call, retries included.
    """

    __slots__ = ("_owner", "_scope", "_timeout")

    def __init__(self, owner: StepOwner, deadline: float, timeout: float | None) -> None:
        owner._check_open()
        self._owner, self._timeout = owner, timeout
        self._scope = anyio.CancelScope(deadline=deadline)

    def __enter__(self) -> None:
        self._scope.__enter__()
        self._owner._steps.add(self._scope)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        owner, scope = self._owner, self._scope
        owner._steps.discard(scope)
        if owner._steps_drained is not None and not owner._steps:
            owner._steps_drained.set()
        swallowed = scope.__exit__(exc_type, exc, tb)
        if not scope.cancelled_caught:
            return bool(swallowed)
        owner._check_open()
        raise RequestTimeoutError(
            f"no complete answer within timeout={self._timeout} s (the whole call, "
            "retries included); the request was cancelled",
            provider=owner.provider,
            model=owner.model_id,
        )


def close_steps(steps: set[anyio.CancelScope]) -> None:
    """Cancel every step in flight (the client is closing): each raises on its way out."""
    for scope in list(steps):
        scope.cancel()
