"""The sync engine under test, behind one small interface: reset it, and run one pass."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Protocol

import httpx

from conformance.failures import EngineError
from conformance.planner import plan_checks
from conformance.sandbox import wait_quiet
from conformance.systems import Systems
from sync.connectors.customcrm import CustomcrmConnector
from sync.connectors.exact import ExactConnector, ExactTokens
from sync.dataflow import Dataflow, render_dataflow
from sync.engine import Engine, SyncReport
from sync.http import HttpPolicy
from sync.service import scrub
from sync.store import LinkStore

__all__ = ["BuiltinEngine", "CommandEngine", "EngineDriver", "EngineError", "EngineKilled", "PollEngine",
           "connect_engine", "make_driver", "poll_seconds", "target_for", "validate_engine"]


class EngineKilled(BaseException):
    """The engine was stopped mid-pass, as by SIGKILL: nothing in the engine may catch this."""


class EngineDriver(Protocol):
    name: str

    def reset(self) -> None: ...

    def sync(self, flows: list[str] | None = None, *, interrupt_after: int | None = None) -> SyncReport | None:
        """One sync pass; with `interrupt_after`, the engine is killed after that many requests (-n: at its n-th
        write; for an external command, after that many tens of milliseconds) and the pass does not finish."""
        ...

    def close(self) -> None: ...


class _KillSwitch(httpx.BaseTransport):
    """Counts an engine's requests and, when armed, kills the engine at the n-th one (before it is sent); armed
    with -n, at its n-th write (a pass that has read everything, and perhaps saved where it read up to, dies
    before it applies a thing: the crash that loses edits when an engine commits its cursors too early)."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.remaining: int | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.remaining is not None and (self.remaining >= 0 or request.method not in ("GET", "HEAD")):
            if self.remaining in (0, -1):
                raise EngineKilled()
            self.remaining += 1 if self.remaining < 0 else -1
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


class BuiltinEngine:
    """talkcheck's reference engine, run in this process with a fresh link store per example.

    `engine_class` lets a test swap in a variant of the engine (the planted bugs).
    """

    name = "builtin"

    def __init__(self, doc: Dataflow, systems: Systems, engine_class: type[Engine] = Engine,
                 **engine_options: Any) -> None:
        self.doc = doc
        self.systems = systems
        self.engine_class = engine_class
        self.engine_options = engine_options
        self.policy = HttpPolicy(attempts=4, base_delay=0.01, max_delay=0.2)
        self._switches: list[_KillSwitch] = []
        self._crm_client = systems.client("customcrm", wrap=self._switch, counted=False)
        self._exact_client = systems.client("exact", wrap=self._switch, counted=False)
        self.engine: Engine | None = None
        self.store: LinkStore | None = None

    def _switch(self, inner: httpx.BaseTransport) -> httpx.BaseTransport:
        switch = _KillSwitch(inner)
        self._switches.append(switch)
        return switch

    def reset(self) -> None:
        """After the mocks were reset: a new engine with a new link store. Against a sandbox (a simulated
        one: `talkcheck run --plan`) nothing is reset, and the engine keeps its links, as a running one would."""
        if self.systems.safe and self.engine is not None:
            return
        if self.store is not None:
            self.store.close()
        self.store = None
        self._start()

    def _start(self) -> None:
        """A new engine process, as it were: fresh memory, the same link store (when there is one)."""
        self.engine = connect_engine(self.doc, self.systems, self._crm_client, self._exact_client,
                                     policy=self.policy, engine_class=self.engine_class, store=self.store,
                                     **self.engine_options)
        self.store = self.engine.store

    def sync(self, flows: list[str] | None = None, *, interrupt_after: int | None = None) -> SyncReport | None:
        """One pass over `flows` (the flows chosen at construction when None)."""
        if self.engine is None:
            self.reset()
        assert self.engine is not None
        if flows is not None:
            self.engine.selected = flows
        for switch in self._switches:
            switch.remaining = interrupt_after
        try:
            return self.engine.run_pass()
        except EngineKilled:
            selected = self.engine.selected
            self._start()  # restarted after the kill, with what the store had committed
            self.engine.selected = selected
            return None
        finally:
            for switch in self._switches:
                switch.remaining = None

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


def connect_engine(doc: Dataflow, systems: Systems, crm_client: httpx.Client, exact_client: httpx.Client, *,
                   policy: HttpPolicy, engine_class: type[Engine] = Engine, store: LinkStore | None = None,
                   **options: Any) -> Engine:
    """An engine with a fresh in-memory link store, wired to both systems through the given clients; the app
    is authorised in Exact first, as a person connecting it would."""
    tokens = systems.exact_tokens()
    crm = CustomcrmConnector(crm_client, systems.api_key, policy)
    exact = ExactConnector(exact_client, systems.division,
                           ExactTokens(tokens.client_id, tokens.client_secret, tokens.refresh_token,
                                       access_token=tokens.access_token, issued_at=time.time()), policy)
    return engine_class(doc, crm, exact, store if store is not None else LinkStore(":memory:"), **options)


# The TALKCHECK_* variables that hold credentials.
_SECRET_VARIABLES = ("CUSTOMCRM_API_KEY", "EXACT_CLIENT_SECRET", "EXACT_REFRESH_TOKEN", "EXACT_ACCESS_TOKEN")


_CALLS_LINE = re.compile(r"^calls to (\w+): (.*)$", re.MULTILINE)
_METHOD_COUNT = re.compile(r"\b([A-Z]+) (\d+)\b")


def reported_calls(output: str) -> dict[str, int]:
    """The calls an engine says a pass made, per system, from lines such as "calls to exact: GET 12, POST 3"
    (what `talkcheck sync` prints after each pass). An engine that prints none reports none: its own app's
    budget is then only what Exact's headers say to that app."""
    out: dict[str, int] = {}
    for system, counts in _CALLS_LINE.findall(output):
        total = sum(int(n) for _method, n in _METHOD_COUNT.findall(counts))
        out[system] = out.get(system, 0) + total
    return out


# How long one pass of a command engine may take. On the mocks a pass is seconds. Against a sandbox the
# engine's own Exact app has 60 calls a minute, and the pass after a batch's writes carries hundreds of
# records (one call each at least): a run of all seven flows at ci puts about 300 in one pass, five minutes
# at that limit. An hour leaves room for a thousand records and the engine's own reads.
MOCK_PASS_TIMEOUT_S = 300.0
SANDBOX_PASS_TIMEOUT_S = 3600.0


class CommandEngine:
    """An external engine run as a command, once per sync pass (``--engine cmd:COMMAND``).

    The command gets both systems' addresses and credentials in TALKCHECK_* variables (listed in
    ``sync.config.ENV_VARIABLES`` and the README) and a state directory that is new whenever the
    checklist resets the systems, so an engine that keeps links on disk starts afresh with them. A pass
    that exits 0 or 1 (some record failed) counts as run; any other exit is the engine's own error.
    """

    def __init__(self, command: str, doc: Dataflow, systems: Systems, *, timeout: float = MOCK_PASS_TIMEOUT_S,
                 run_id: str = "") -> None:
        self.name = f"cmd:{command}"
        self.command = command
        self.systems = systems
        self.timeout = timeout
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self._root = Path(tempfile.mkdtemp(prefix="talkcheck-engine-"))
        self.doc_path = str(self._root / "dataflow.rst")  # the document as parsed, in the generator's format
        Path(self.doc_path).write_text(render_dataflow(doc), encoding="utf-8")
        self._env: dict[str, str] = {}
        self.last_output = ""
        self.reported_calls: dict[str, int] = {}  # the calls the engine said it made, summed over its passes

    def reset(self) -> None:
        """After the systems were reset: new Exact tokens (the old ones are gone) and a new state directory.
        A sandbox is never reset, so there the engine keeps its state directory for the whole run."""
        if self.systems.safe and self._env:
            return
        tokens = self.systems.engine_exact_tokens()
        state_dir = Path(tempfile.mkdtemp(prefix="state-", dir=self._root))
        self._env = {
            "TALKCHECK_CUSTOMCRM_BASE_URL": self.systems.customcrm_url,
            "TALKCHECK_CUSTOMCRM_API_KEY": self.systems.api_key,
            "TALKCHECK_EXACT_BASE_URL": self.systems.exact_url,
            "TALKCHECK_EXACT_DIVISION": str(self.systems.division),
            "TALKCHECK_EXACT_CLIENT_ID": tokens.client_id,
            "TALKCHECK_EXACT_CLIENT_SECRET": tokens.client_secret,
            "TALKCHECK_EXACT_REFRESH_TOKEN": tokens.refresh_token,
            "TALKCHECK_EXACT_ACCESS_TOKEN": tokens.access_token,
            "TALKCHECK_DOC": self.doc_path,
            "TALKCHECK_STATE_DIR": str(state_dir),
            "TALKCHECK_PRIORITY": "customcrm",
            "TALKCHECK_RUN_ID": self.run_id,
        }

    def sync(self, flows: list[str] | None = None, *, interrupt_after: int | None = None) -> SyncReport | None:
        """Run the command once; with `interrupt_after`, kill it after that many tens of milliseconds."""
        if not self._env:
            self.reset()
        env = {**os.environ, **self._env, "TALKCHECK_FLOWS": ",".join(flows or [])}
        process = subprocess.Popen(self.command, shell=True, env=env, stdout=subprocess.PIPE,  # noqa: S602
                                   stderr=subprocess.STDOUT, start_new_session=True)
        # A command's requests cannot be counted from here: a kill point is a time (-n: n tens of ms as well).
        limit = self.timeout if interrupt_after is None else abs(interrupt_after) / 100
        try:
            output, _ = process.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
            if interrupt_after is None:
                raise EngineError(f"the engine command ran longer than {self.timeout:.0f} s: {self.command}") from None
            return None
        # The engine's output goes into the report: never with a credential it was handed (an engine that
        # prints its environment on failure is common enough).
        text = output.decode("utf-8", "replace")
        for system, count in reported_calls(text).items():
            self.reported_calls[system] = self.reported_calls.get(system, 0) + count
        self.last_output = scrub(text, self._secrets())[-4000:]
        if process.returncode not in (0, 1):
            raise EngineError(f"the engine command exited {process.returncode}: {self.command}\n{self.last_output}")
        return None

    def _secrets(self) -> list[str]:
        values = (self._env.get(f"TALKCHECK_{name}", "") for name in _SECRET_VARIABLES)
        return [value for value in values if value]

    def close(self) -> None:
        shutil.rmtree(self._root, ignore_errors=True)


class PollEngine:
    """An engine that runs by itself, such as Sesam Talk (``--engine poll:SECONDS``).

    A "pass" is waiting for the engine to have done its work: both systems' collections of the flows
    (read through the Exact sync API and the Customcrm change feed, from where they stood) must stay
    unchanged for a quarter of SECONDS, and the wait ends after SECONDS at most. The engine must therefore
    react to a change within a quarter of SECONDS. Only a sandbox can be polled: the mocks are reset
    between examples, which an engine running on its own could not follow.
    """

    def __init__(self, seconds: float, doc: Dataflow, systems: Systems) -> None:
        self.name = f"poll:{seconds:g}"
        self.seconds = seconds
        self.quiet = max(0.5, seconds / 4)
        self.interval = min(max(0.1, self.quiet / 3), 10.0)
        self.doc = doc
        self.systems = systems
        self._marks: dict[str, int] | None = None
        self._cursor = [""]
        self._paths_by_flows: dict[tuple[str, ...] | None, list[str]] = {}
        self.last_output = ""

    def reset(self) -> None:
        """A running engine keeps its links; nothing to do."""

    def _paths(self, flows: list[str] | None) -> list[str]:
        """The sync collections of these flows (planned once per set of flows)."""
        key = tuple(flows) if flows is not None else None
        if key not in self._paths_by_flows:
            self._paths_by_flows[key] = self._plan_paths(flows)
        return self._paths_by_flows[key]

    def _plan_paths(self, flows: list[str] | None) -> list[str]:
        paths: list[str] = []
        for flow in self.doc.flows:
            plan = plan_checks(flow, self.doc)
            if (flows is None or flow.id in flows) and not isinstance(plan, str):
                for path in (plan.entity.sync_path, plan.entity.lines.sync_path if plan.entity.lines else None):
                    if path and path not in paths:
                        paths.append(path)
        return paths

    def sync(self, flows: list[str] | None = None, *, interrupt_after: int | None = None) -> SyncReport | None:
        scope = self.systems.scope
        assert scope is not None, "poll: needs a sandbox"
        if self._marks is None:
            self._marks, self._cursor = dict(scope.exact_marks), [scope.crm_cursor]
        marks = self._marks
        paths = self._paths(flows)

        def changed() -> bool:
            chosen = {p: marks.get(p, 0) for p in paths}
            moved = scope.changed(chosen, self._cursor)
            marks.update(chosen)
            return moved

        started = time.monotonic()
        quiet = wait_quiet(changed, quiet=self.quiet, deadline=started + self.seconds, interval=self.interval)
        self.last_output = (f"quiet after {time.monotonic() - started:.1f} s" if quiet else
                            f"still changing after {self.seconds:g} s")
        return None

    def close(self) -> None:
        pass


def poll_seconds(spec: str) -> float | None:
    """SECONDS of ``poll:SECONDS`` (None for another engine); a bad number is a ValueError."""
    if not spec.startswith("poll:"):
        return None
    try:
        seconds = float(spec[len("poll:"):])
    except ValueError:
        raise ValueError(f"poll: takes a number of seconds, not {spec[len('poll:'):]!r}") from None
    if not 0 < seconds <= 86_400:
        raise ValueError("poll: takes a number of seconds above 0 (and at most a day)")
    return seconds


def validate_engine(spec: str, target: str | None = None) -> None:
    """Refuse an engine the checklist cannot drive (or drive against this target), before anything starts."""
    if spec.startswith("poll:"):
        poll_seconds(spec)
        if target is not None and target != "sandbox":
            raise ValueError("poll: waits for an engine that runs by itself, which the mocks' resets would "
                             "confuse: point it and talkcheck at the same systems with --target sandbox "
                             "(the mocks can be such a sandbox: talkcheck serve)")
        return
    if spec != "builtin" and not (spec.startswith("cmd:") and spec[len("cmd:"):].strip()):
        raise ValueError(f"unknown engine {spec!r}: use builtin, cmd:COMMAND or poll:SECONDS")
    if spec == "builtin" and target == "simulation":
        return
    if spec == "builtin" and target == "sandbox":
        raise ValueError("against a sandbox, name the engine under test: cmd:COMMAND or poll:SECONDS (talkcheck's "
                         "own engine is cmd:'talkcheck sync --from-env --once'; run in-process it would sync every "
                         "record of the sandbox)")


def target_for(engine: str, target: str) -> str:
    """An external engine reaches the mocks over the network: in-process mocks are served instead."""
    return "server" if engine != "builtin" and target == "inproc" else target


def make_driver(engine: str, doc: Dataflow, systems: Systems, *, engine_class: type[Engine] = Engine,
                flows: list[str] | None = None) -> EngineDriver:
    validate_engine(engine, systems.target)
    seconds = poll_seconds(engine)
    if seconds is not None:
        return PollEngine(seconds, doc, systems)
    if engine.startswith("cmd:"):
        timeout = SANDBOX_PASS_TIMEOUT_S if systems.safe else MOCK_PASS_TIMEOUT_S
        return CommandEngine(engine[len("cmd:"):], doc, systems, timeout=timeout,
                             run_id=systems.scope.run_id if systems.scope else "")
    return BuiltinEngine(doc, systems, engine_class, flows=flows)
