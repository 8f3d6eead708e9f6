"""An in-memory backend: a test double for flows, scripted per component, counting every call.

``FakeBackend`` implements the protocol of ``strataflow.backends.base`` without touching a
cloud (as httpx ships ``MockTransport``, strataflow ships this for its users' tests too). Each component gets a script: a list of steps played one per ``apply`` (the last
step repeats). A step is ``OK`` (succeed with the component's outputs), an exception
instance or class (raised), or ``Hang(seconds)`` (block, as a cloud call that never
answers). ``installed`` puts it in place of a built-in backend kind and restores the real
one afterwards, so a config of ``command`` components runs on the fake.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from strataflow.backends import registry
from strataflow.backends.base import ComponentRun, Outcome, Untracked

OK = "ok"


@dataclass(frozen=True)
class Hang:
    """A call that does not return for ``seconds`` (unless released)."""

    seconds: float


@dataclass
class FakeBackend(Untracked):
    """Scripted applies; every call is recorded as ``(operation, component)``."""

    scripts: dict[str, list[Any]] = field(default_factory=dict)
    outputs_of: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    """Set it to end every ``Hang`` at once (tests set it when they finish)."""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, operation: str, component: str) -> int:
        with self._lock:
            return sum(1 for call in self.calls if call == (operation, component))

    def _step(self, operation: str, run: ComponentRun) -> Outcome:
        with self._lock:
            played = sum(1 for call in self.calls if call == (operation, run.component))
            self.calls.append((operation, run.component))
        script = self.scripts.get(run.component) or [OK]
        step = script[min(played, len(script) - 1)]
        if isinstance(step, Hang):
            self.release.wait(step.seconds)
            step = OK
        if isinstance(step, BaseException) or (isinstance(step, type) and issubclass(step, BaseException)):
            raise step
        outputs = dict(self.outputs_of.get(run.component, {"id": f"{run.env}-{run.component}"}))
        return Outcome(changes=1, outputs=outputs, summary=[f"fake {operation} {run.component}"])

    def plan(self, run: ComponentRun) -> Outcome:
        return self._step("plan", run)

    def apply(self, run: ComponentRun) -> Outcome:
        return self._step("apply", run)

    def destroy(self, run: ComponentRun) -> Outcome:
        return self._step("destroy", run)

    def outputs(self, run: ComponentRun) -> dict[str, Any]:
        return dict(self.outputs_of.get(run.component, {}))



@contextmanager
def installed(fake: FakeBackend, kind: str = "command") -> Iterator[FakeBackend]:
    """Serve components of backend ``kind`` with ``fake`` in this process; restore the real backend after."""
    previous = registry.use(kind, fake)
    try:
        yield fake
    finally:
        fake.release.set()
        registry.use(kind, previous)


__all__ = ["OK", "FakeBackend", "Hang", "installed"]
