"""Many checks, one engine pass: the checks of a batch run side by side and meet at every sync.

A check asks for a sync when it has written what it needs the engine to carry over. In a batch, every check
runs in its own thread; a sync request waits until every other running check has asked for one too (or
finished), then one engine pass runs for all of them and they all go on. So a batch of a hundred checks costs
the passes of its longest check, not the sum of all of them, and the engine sees many records of many
examples changed at once, as in production, with pages to cross.

A pass that fails (an engine that crashes, a sandbox whose calls are spent) fails every check that waited for
it, with the same error: each of them needed that pass.
"""

from __future__ import annotations

import ast
import gc
import threading
from collections.abc import Callable
from random import Random
from typing import Any, TypeVar

import hypothesis.core
import hypothesis.stateful

from conformance.disruption import Disruption

__all__ = ["Lockstep", "run_side_by_side"]

T = TypeVar("T")


class Lockstep:
    """A barrier of sync requests: the last participant to arrive runs the pass, the others wait for it.

    A participant may ask for a disrupted pass (`Disruption`: faults, an engine killed mid-pass) before the
    clean ones, given `disrupt` to run it. Where several ask at once, the one of the lowest `rank` is run
    (ranks are fixed per participant, so which one does not depend on the order the threads arrived in),
    then as many clean passes as any of them asked for; a participant that asked for a plain pass gets the
    disrupted one too, and must be as right after the clean passes as after a plain one."""

    def __init__(self, run_pass: Callable[[], None], disrupt: Callable[[Disruption], None] | None = None) -> None:
        self._run_pass = run_pass
        self._disrupt = disrupt
        self._cond = threading.Condition()
        self._live = 0
        self._waiting = 0
        self._generation = 0
        self._failures: dict[int, BaseException] = {}
        self._asked: list[tuple[int, Disruption]] = []
        self.passes = 0

    def enter(self) -> None:
        with self._cond:
            self._live += 1

    def leave(self) -> None:
        """A participant is done: if everyone left is waiting, the pass they wait for runs now."""
        with self._cond:
            self._live -= 1
            if self._waiting and self._waiting == self._live:
                self._pass()

    def sync(self, disruption: Disruption | None = None, rank: int = 0) -> None:
        """One engine pass shared with every other participant (after a disrupted one, when asked for and
        this lockstep can run one); returns when it has run."""
        if disruption is not None and self._disrupt is None:  # never a plain pass in its place: the faults
            raise ValueError("this lockstep cannot run a disrupted pass")  # would be lost without a word
        with self._cond:
            generation = self._generation
            if disruption is not None:
                self._asked.append((rank, disruption))
            self._waiting += 1
            if self._waiting == self._live:
                self._pass()
            else:
                while generation == self._generation:
                    self._cond.wait()
            failure = self._failures.get(generation)
        if failure is not None:
            raise failure

    def _pass(self) -> None:
        """Run the pass (the lock is held: every other participant is waiting) and release the waiters."""
        generation = self._generation
        asked, self._asked = sorted(self._asked, key=lambda item: item[0]), []
        try:
            if asked:
                assert self._disrupt is not None  # refused in `sync`
                self.passes += 1
                self._disrupt(asked[0][1])
            for _ in range(max((disruption.clean for _rank, disruption in asked), default=1)):
                self.passes += 1
                self._run_pass()
        except BaseException as exc:  # noqa: BLE001 - handed to every check that waited for this pass
            self._failures[generation] = exc
        finally:
            self._waiting = 0
            self._generation += 1
            self._cond.notify_all()


_parsing = threading.Lock()


def _one_parse_at_a_time(parse: Callable[..., ast.AST]) -> Callable[..., ast.AST]:
    """`ast.parse` behind a lock: CPython 3.11 keeps the AST builder's recursion depth in state shared by
    threads, and two parses at once can fail with "AST constructor recursion depth mismatch". Hypothesis
    parses source to describe examples and steps, in every check's thread."""

    def parse_alone(*args: Any, **kwargs: Any) -> ast.AST:
        with _parsing:
            return parse(*args, **kwargs)

    parse_alone.__wrapped__ = parse  # type: ignore[attr-defined]
    return parse_alone


# Hypothesis gives each new thread a Random of its own the first time it runs a test there, registered for
# seeding and restoring around every test case: the registration runs a full garbage collection, and every
# test case then seeds and restores the Random of every live thread. With hundreds of checks side by side
# that was a fifth of a run's time. The threads of a batch share one Random instead, and it is not registered
# (registering it would cost a full collection at import, before the workers start): Hypothesis draws from it
# only to pick a test's seed when none is given, and the checklist always gives one, so nothing it draws
# depends on this Random's state.
_SHARED_RANDOM = Random()


def _share_hypothesis_random() -> None:
    local = getattr(hypothesis.core, "threadlocal", None)  # absent in another Hypothesis: nothing to share
    if local is not None and getattr(local, "_hypothesis_global_random", None) is None:
        local._hypothesis_global_random = _SHARED_RANDOM


def _digest_once(digest: Callable[[Any], bytes]) -> Callable[[Any], bytes]:
    """Hypothesis's digest of a test (its key in the example database) remembered per source: Hypothesis
    works it out on every run of a test, from the source (tokenised again, and for a state machine class the
    whole module parsed again to find it). A batch runs each check's test once per lane, with a test function
    and a machine class made anew for each context from one source: a twentieth of a run's time went to
    digests of the same few functions. Keyed by the function's code, or the class's module and name, and
    what Hypothesis adds to the digest."""

    digests: dict[tuple[Any, ...], bytes] = {}
    lock = threading.Lock()

    def digest_once(function: Any) -> bytes:
        source = (function.__module__, function.__qualname__) if isinstance(function, type) else \
            getattr(function, "__code__", None)
        if source is None:
            return digest(function)
        key = (source, getattr(function, "_hypothesis_internal_add_digest", None))
        with lock:
            known = digests.get(key)
        if known is None:
            known = digest(function)
            with lock:
                digests[key] = known
        return known

    digest_once.__wrapped__ = digest  # type: ignore[attr-defined]
    return digest_once


def _remember_digests() -> None:
    for module in (hypothesis.core, hypothesis.stateful):
        digest = getattr(module, "function_digest", None)  # absent in another Hypothesis: nothing to remember
        if digest is not None and getattr(digest, "__wrapped__", None) is None:
            module.function_digest = _digest_once(digest)  # type: ignore[attr-defined]


def run_side_by_side(lockstep: Lockstep, jobs: list[Callable[[], T]]) -> list[T]:
    """Run every job in its own thread as a participant of `lockstep`; their results, in order."""
    if getattr(ast.parse, "__wrapped__", None) is None:
        ast.parse = _one_parse_at_a_time(ast.parse)  # type: ignore[assignment]
    _remember_digests()
    results: list[T | None] = [None] * len(jobs)
    errors: list[BaseException | None] = [None] * len(jobs)

    def work(index: int, job: Callable[[], T]) -> None:
        try:
            _share_hypothesis_random()
            results[index] = job()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread below
            errors[index] = exc
        finally:
            lockstep.leave()

    # Hypothesis sets up each new thread with a full garbage collection; objects that live as long as the run
    # (modules, apps, documents) are moved out of the collector's way first, so that costs little.
    gc.freeze()
    threads = []
    for index, job in enumerate(jobs):
        lockstep.enter()  # every participant counts before any starts, so none runs a pass alone
        threads.append(threading.Thread(target=work, args=(index, job), name=f"talkcheck-check-{index}",
                                        daemon=True))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for error in errors:
        if error is not None:
            raise error
    return [r for r in results]  # type: ignore[misc]
