"""How a check fails: a broken promise with its evidence, or a check the systems cannot stage."""

from __future__ import annotations

from typing import Any

__all__ = ["CheckFailure", "EngineError", "NotApplicable", "PassNotRun", "visible"]

_NOT_GIVEN: Any = object()


class CheckFailure(AssertionError):
    """A broken promise of the document, with the evidence a reader needs: as one line (``[flow / check]
    what happened``) and as fields a report shows on their own (`fields`): the flow, the check, the record
    and the property at fault, what was expected and what was found, where the check knows them."""

    def __init__(self, message: str, *, flow: str | None = None, check: str | None = None,
                 record: str | None = None, prop: str | None = None, expected: Any = _NOT_GIVEN,
                 found: Any = _NOT_GIVEN) -> None:
        self.message, self.flow, self.check, self.record, self.prop = message, flow, check, record, prop
        self.expected, self.found = expected, found
        where = f"{flow} / {check}" if flow and check else flow or check
        super().__init__(f"[{where}] {message}" if where else message)

    def fields(self) -> dict[str, str]:
        """What the failure is about, field by field (values shown as the one line shows them)."""
        out = {"flow": self.flow, "check": self.check, "record": self.record, "property": self.prop,
               "expected": None if self.expected is _NOT_GIVEN else visible(self.expected),
               "found": None if self.found is _NOT_GIVEN else visible(self.found), "message": self.message}
        return {k: v for k, v in out.items() if v}


def visible(value: Any) -> str:
    """A value as the failure shows it: its repr, and where that holds anything beyond ASCII, its code points
    too, so that two values that look the same ('Zoë' composed and decomposed) read differently."""
    shown = repr(value)
    return shown if shown.isascii() else f"{shown} [{ascii(value)}]"


class NotApplicable(BaseException):  # noqa: N818 - a BaseException, so Hypothesis stops at once (no shrinking)
    """The systems cannot stage what a check needs (a sandbox with too few Exact users, say): reported as a
    skip with this reason, never as a pass."""


class EngineError(RuntimeError):
    """The engine under test could not run a pass at all (it crashed, or ran past its time). Every check
    that waited for the pass fails with it; nothing about any one property can be learnt from it."""


class PassNotRun(BaseException):  # noqa: N818 - a stop, not an error of the check's
    """The engine pass a check waited for could not run (an `EngineError`), raised in the check's thread.

    A BaseException on purpose: Hypothesis runs a failing example again to confirm it, and that would wait
    for another pass of an engine that has just failed to run one (against a sandbox, with a timeout of an
    hour). Hypothesis lets a BaseException through at once; the runner reports the check as failed with the
    engine's error."""

    def __init__(self, error: EngineError) -> None:
        super().__init__(str(error))
        self.error = error
