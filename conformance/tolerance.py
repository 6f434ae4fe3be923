"""Tolerances: where equality of a property is a matter of policy, the user declares it, per property.

The document promises that a property is kept equal, so the checklist compares strictly: an engine that trims
whitespace, lower-cases an e-mail address or normalises Unicode fails. Some teams accept one of these for a
property (Exact's search is case-insensitive anyway, say). They declare it per property with
``--tolerate FLOW:PROPERTY=KIND[+KIND]``; the comparison then sees both values through the declared kinds,
and the report lists every tolerance that applied, so a reader knows what the passes mean.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from sync.dataflow import Dataflow

__all__ = ["KINDS", "Tolerances", "described", "parse_tolerance", "tolerated"]

KINDS = ("trim", "case", "unicode", "line-breaks")
# flow id -> property (the row's source, as the checks name mappings) -> kinds tolerated
Tolerances = dict[str, dict[str, frozenset[str]]]

_LINE_BREAK = re.compile(r"[ \t]*(\r\n|\r|\n)[ \t]*")


def tolerated(value: Any, kinds: frozenset[str]) -> Any:
    """`value` as the declared tolerances see it: text normalised to NFC (`unicode`), line breaks as single
    spaces (`line-breaks`), without leading and trailing whitespace (`trim`), case-folded (`case`). Anything
    else, and any value with no tolerance declared, is itself."""
    if not kinds or not isinstance(value, str):
        return value
    if "unicode" in kinds:
        value = unicodedata.normalize("NFC", value)
    if "line-breaks" in kinds:
        value = _LINE_BREAK.sub(" ", value)
    if "trim" in kinds:
        value = value.strip()
    if "case" in kinds:
        value = value.casefold()
    return value


def parse_tolerance(text: str, doc: Dataflow, into: Tolerances) -> None:
    """Add one ``FLOW:PROPERTY=KIND[+KIND]`` to `into`; a ValueError with one line saying what is wrong. The
    property may be named by either side's name in the flow's table."""
    flow_id, _, rest = text.partition(":")
    name, _, kinds_text = rest.partition("=")
    if not flow_id or not name or not kinds_text:
        raise ValueError(f"--tolerate {text!r}: write FLOW:PROPERTY=KIND[+KIND], KIND one of {', '.join(KINDS)}")
    flows = {f.id: f for f in doc.flows}
    if flow_id not in flows:
        raise ValueError(f"--tolerate {text!r}: no flow {flow_id!r}; known: {', '.join(flows)}")
    rows = [r for r in flows[flow_id].properties if name in (r.source, r.target, r.id)]
    if not rows:
        known = ", ".join(r.source for r in flows[flow_id].properties)
        raise ValueError(f"--tolerate {text!r}: {flow_id} has no property {name!r}; known: {known}")
    kinds = frozenset(k.strip() for k in kinds_text.split("+"))
    unknown = sorted(kinds - set(KINDS))
    if unknown:
        raise ValueError(f"--tolerate {text!r}: no tolerance {unknown[0]!r}; known: {', '.join(KINDS)}")
    into.setdefault(flow_id, {})[rows[0].source] = into.get(flow_id, {}).get(rows[0].source, frozenset()) | kinds


def described(tolerances: Tolerances) -> list[str]:
    """One ``FLOW:PROPERTY=KIND[+KIND]`` per tolerated property, as declared: the report shows them and its
    replay command repeats them."""
    return [f"{flow}:{prop}={'+'.join(sorted(kinds))}" for flow, props in sorted(tolerances.items())
            for prop, kinds in sorted(props.items())]
