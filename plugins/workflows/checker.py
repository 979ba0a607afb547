"""``dovetail workflow check``: every mistake in a workflow file, located to the character.

The check never stops at the first problem: YAML syntax aside (the file cannot be read
past it), it reports unknown and duplicate keys, unknown entity/states/actions/
permissions/roles, unreachable states, missing or several initial states, transitions
leaving a final state, guard syntax errors and unknown guard names, bad inputs and
approvals, and records sitting in states the file removes without a ``state_map``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from core.config import YamlDoc, compose
from core.errors import ConfigError, ConfigIssue
from core.expressions import FUNCTIONS, USER_NAMES
from core.expressions import check as check_expression
from core.statemachine import Machine, machine_from_dict

TOP_KEYS = ("entity", "field", "description", "states", "transitions", "state_map")
STATE_KEYS = ("label", "initial", "final", "description")
TRANSITION_KEYS = ("from", "to", "label", "permission", "roles", "guard", "guard_message", "actions",
                   "comment_required", "inputs", "approvals", "description", "marks")
INPUT_KEYS = ("label", "type", "required", "max_length", "pattern", "choices")
INPUT_TYPES = ("string", "text", "integer", "decimal", "date")
APPROVAL_KEYS = ("role", "count")
KEY_RE = re.compile(r"^[a-z][a-z0-9_]*$")

#: Counts records of an entity whose state is outside ``states``: ``{state: count}``.
Counter = Callable[[Any, str, "set[str]"], Mapping[str, int]]


@dataclass
class Known:
    """What the running system offers a workflow file (built from the app, or by tests)."""

    entities: Mapping[str, Any]                 # name -> WorkflowEntity (enabled plugins)
    disabled_entities: Mapping[str, str]        # name -> plugin, for installed but disabled plugins
    actions: Mapping[str, tuple[Any, str]]      # name -> (WorkflowAction, owner)
    disabled_plugins: frozenset[str]
    permissions: frozenset[str]
    roles: frozenset[str]


@dataclass
class Result:
    """The outcome of checking one file."""

    file: str
    issues: list[ConfigIssue] = field(default_factory=list)
    entity: str | None = None
    machine: Machine | None = None
    data: Any = None
    skipped: str | None = None          # a notice: the entity's plugin is disabled
    moves: dict[str, tuple[str, int]] = field(default_factory=dict)  # removed state -> (target, count)

    @property
    def errors(self) -> list[ConfigIssue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors


def _hint_names(word: str, known: Any, what: str) -> str:
    known = sorted(str(k) for k in known)
    close = difflib.get_close_matches(str(word), known, n=1)
    listed = ", ".join(known[:15]) + (", …" if len(known) > 15 else "")
    text = f"did you mean '{close[0]}'? " if close else ""
    return f" (hint: {text}known {what}: {listed or 'none'})"


# ---------------------------------------------------------------------------
# Parsing that keeps going after duplicate keys
# ---------------------------------------------------------------------------


def parse(text: str, file: str) -> tuple[YamlDoc | None, list[ConfigIssue]]:
    """Parse with positions through the config loader (no aliases, bounded nesting).

    A file that cannot be read past a point (syntax, an alias) ends the check; duplicate
    keys do not: the first definition is kept so the rest of the file is still checked.
    """
    try:
        doc, issues = compose(text, file)
    except ConfigError as exc:
        return None, [ConfigIssue(i.file, i.line, i.column, i.message + (
            " (hint: check the indentation and quoting around this position)"
            if i.message.startswith("YAML syntax") else "")) for i in exc.issues]
    return doc, [ConfigIssue(i.file, i.line, i.column, i.message[:-1] + "; hint: merge the two or rename one)")
                 if i.message.startswith("duplicate key") else i for i in issues]


# ---------------------------------------------------------------------------
# The check
# ---------------------------------------------------------------------------


class _Checker:
    def __init__(self, doc: YamlDoc, text: str, known: Known, result: Result) -> None:
        self.doc, self.lines, self.known, self.result = doc, text.splitlines(), known, result

    # -- reporting ---------------------------------------------------------
    def err(self, path: tuple, message: str, *, key: bool = False, severity: str = "error") -> None:
        self.result.issues.append(self.doc.issue(path, message, key=key, severity=severity))

    def warn(self, path: tuple, message: str, *, key: bool = False) -> None:
        self.err(path, message, key=key, severity="warning")

    def at(self, line: int, col: int, message: str) -> None:
        self.result.issues.append(ConfigIssue(self.doc.file, line, col, message))

    def keys(self, data: Mapping, path: tuple, allowed: tuple[str, ...], where: str) -> None:
        for k in data:
            if k not in allowed:
                self.err(path + (k,), f"unknown key '{k}' in {where}" + _hint_names(k, allowed, "keys"),
                         key=True)

    def mapping(self, value: Any, path: tuple, what: str) -> dict:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.err(path, f"{what} must be a mapping, got {type(value).__name__}")
            return {}
        return dict(value)

    def label(self, value: Any, path: tuple) -> None:
        if value is None or isinstance(value, str):
            return
        if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
            self.err(path, "label must be text or a mapping of language to text "
                           "(hint: {en: Confirm, zh_CN: 确认})")

    def boolean(self, value: Any, path: tuple, what: str) -> None:
        if value is not None and not isinstance(value, bool):
            self.err(path, f"{what} must be true or false, got {value!r}")

    # -- the whole file ----------------------------------------------------
    def run(self) -> None:
        data = self.doc.data
        if data is None:
            self.err((), "the workflow file is empty (hint: write entity, states and transitions, or "
                         "delete the file to use the built-in workflow)")
            return
        if not isinstance(data, Mapping):
            self.err((), "a workflow file must be a mapping with entity, states and transitions, not "
                         f"{'a list' if isinstance(data, list) else repr(data)}")
            return
        self.keys(data, (), TOP_KEYS, "the workflow file")
        ent = self.entity(data)
        if self.result.skipped:
            return
        states = self.states(data)
        transitions = self.mapping(data.get("transitions"), ("transitions",), "transitions")
        if "transitions" not in data:
            self.err((), "missing 'transitions' (hint: add at least one transition)")
        for key, t in transitions.items():
            self.transition(str(key), t, states, ent)
        self.reachability(states, transitions)
        self.state_map(data, states, ent)

    def entity(self, data: Mapping) -> Any:
        name = data.get("entity")
        if name is None:
            self.err((), "missing 'entity' (hint: the entity this workflow drives, e.g. entity: order; "
                         f"known: {', '.join(sorted(self.known.entities)) or 'none'})")
            return None
        if not isinstance(name, str):
            self.err(("entity",), "entity must be a name")
            return None
        self.result.entity = name
        if name in self.known.disabled_entities:
            plugin = self.known.disabled_entities[name]
            self.result.skipped = (f"{self.doc.file}: skipped: entity '{name}' belongs to plugin "
                                   f"'{plugin}', which is disabled")
            return None
        ent = self.known.entities.get(name)
        if ent is None:
            self.err(("entity",), f"unknown entity '{name}'" + _hint_names(name, self.known.entities,
                                                                          "entities"))
            return None
        fld = data.get("field", ent.state_field)
        if fld != ent.state_field:
            self.err(("field",), f"entity '{name}' keeps its state in '{ent.state_field}', not '{fld}' "
                                 f"(hint: field: {ent.state_field})")
        return ent

    def states(self, data: Mapping) -> dict[str, Any]:
        if "states" not in data:
            self.err((), "missing 'states' (hint: list the states, one marked initial: true)")
            return {}
        states = self.mapping(data.get("states"), ("states",), "states")
        initials = []
        for key, s in states.items():
            path = ("states", key)
            if not isinstance(key, str) or not KEY_RE.match(key):
                self.err(path, f"state key '{key}' must be lower_snake_case", key=True)
            s = self.mapping(s, path, f"state '{key}'")
            self.keys(s, path, STATE_KEYS, f"state '{key}'")
            self.label(s.get("label"), path + ("label",))
            self.boolean(s.get("initial"), path + ("initial",), "initial")
            self.boolean(s.get("final"), path + ("final",), "final")
            if s.get("initial") is True:
                initials.append(key)
        if states and not initials:
            self.err(("states",), "no initial state (hint: mark the first state with initial: true)",
                     key=True)
        for extra in initials[1:]:
            self.err(("states", extra, "initial"), f"several initial states ({', '.join(initials)}) "
                                                   "(hint: exactly one state may be initial)")
        return {k: (v if isinstance(v, Mapping) else {}) for k, v in states.items()}

    def state_ref(self, value: Any, path: tuple, states: Mapping, what: str) -> list[str]:
        values = value if isinstance(value, list) else [value]
        good = []
        for i, v in enumerate(values):
            p = path + (i,) if isinstance(value, list) else path
            if not isinstance(v, str):
                self.err(p, f"'{what}' must name a state")
            elif v not in states:
                self.err(p, f"unknown state '{v}' in '{what}'" + _hint_names(v, states, "states"))
            else:
                good.append(v)
        return good

    def transition(self, key: str, t: Any, states: Mapping, ent: Any) -> None:
        path = ("transitions", key)
        if not KEY_RE.match(key):
            self.err(path, f"transition key '{key}' must be lower_snake_case", key=True)
        t = self.mapping(t, path, f"transition '{key}'")
        self.keys(t, path, TRANSITION_KEYS, f"transition '{key}'")
        self.transition_states(key, t, path, states)
        self.label(t.get("label"), path + ("label",))
        self.boolean(t.get("comment_required"), path + ("comment_required",), "comment_required")
        self.transition_access(t, path)
        if "guard" in t:
            self.guard(t["guard"], path + ("guard",), ent)
        actions = t.get("actions")
        if actions is not None:
            if not isinstance(actions, list):
                self.err(path + ("actions",), "actions must be a list (hint: actions: [orders.reserve_stock])")
            else:
                for i, a in enumerate(actions):
                    self.action(a, path + ("actions", i), ent)
        if "inputs" in t:
            self.inputs(t["inputs"], path + ("inputs",))
        if "marks" in t:
            self.marks(t["marks"], path + ("marks",), ent)
        if "approvals" in t:
            self.approvals(t["approvals"], path + ("approvals",))

    def transition_states(self, key: str, t: Any, path: tuple, states: Mapping) -> None:
        """``from`` and ``to`` name known states, ``to`` is one state, no transition leaves a final one."""
        for req in ("from", "to"):
            if req not in t:
                self.err(path, f"transition '{key}' has no '{req}' (hint: {req}: <state>)", key=True)
        sources = self.state_ref(t["from"], path + ("from",), states, "from") if "from" in t else []
        if "to" in t:
            if isinstance(t["to"], list):
                self.err(path + ("to",), "'to' must be one state")
            else:
                self.state_ref(t["to"], path + ("to",), states, "to")
        for src in sources:
            if states.get(src, {}).get("final") is True:
                i = t["from"].index(src) if isinstance(t["from"], list) else None
                self.err(path + ("from",) + ((i,) if i is not None else ()),
                         f"transition '{key}' leaves final state '{src}' (hint: remove final: true from "
                         f"'{src}' or drop it from 'from')")

    def transition_access(self, t: Any, path: tuple) -> None:
        """Who may run a transition and what they are told when its guard refuses."""
        perm = t.get("permission")
        if perm is not None:
            self.permission(perm, path + ("permission",))
        roles = t.get("roles")
        if roles is not None:
            if not isinstance(roles, list):
                self.err(path + ("roles",), "roles must be a list (hint: roles: [finance])")
            else:
                for i, r in enumerate(roles):
                    self.role(r, path + ("roles", i))
        gm = t.get("guard_message")
        if gm is not None and not isinstance(gm, str) and not (
                isinstance(gm, Mapping) and gm and all(isinstance(v, str) for v in gm.values())):
            self.err(path + ("guard_message",), "guard_message must be text or a mapping of language to text "
                                                "(hint: {en: the order has no lines, zh_CN: 订单没有明细})")

    def marks(self, value: Any, path: tuple, ent: Any) -> None:
        """``marks: [cancelled]``: only meanings the entity's plugin declares and acts on."""
        items = [(path, value)] if isinstance(value, str) else \
            [(path + (i,), v) for i, v in enumerate(value)] if isinstance(value, list) else None
        if items is None:
            self.err(path, "marks must be a list of names (hint: marks: [cancelled])")
            return
        known = dict(getattr(ent, "marks", None) or {}) if ent is not None else None
        seen: set[str] = set()
        for p, mark in items:
            if not isinstance(mark, str):
                self.err(p, "a mark is a name like cancelled")
                continue
            if mark in seen:
                self.err(p, f"mark '{mark}' listed twice")
            elif known is not None and mark not in known:
                hint = (f" (hint: marks known to '{ent.name}': {', '.join(sorted(known))})" if known
                        else f" (hint: entity '{ent.name}' declares no marks)")
                self.err(p, f"unknown mark '{mark}' for entity '{ent.name}'{hint}")
            seen.add(mark)

    def permission(self, perm: Any, path: tuple) -> None:
        if not isinstance(perm, str):
            self.err(path, "permission must be a name like orders.order.confirm")
            return
        if perm in self.known.permissions:
            return
        plugin = perm.split(".", 1)[0]
        if plugin in self.known.disabled_plugins:
            self.err(path, f"permission '{perm}' belongs to plugin '{plugin}', which is disabled "
                           f"(hint: enable it with 'dovetail plugins enable {plugin}' or use another "
                           "permission)")
            return
        self.err(path, f"unknown permission '{perm}'" + _hint_names(perm, self.known.permissions,
                                                                    "permissions"))

    def role(self, role: Any, path: tuple) -> None:
        if not isinstance(role, str) or role not in self.known.roles:
            self.err(path, f"unknown role '{role}'" + _hint_names(role, self.known.roles,
                                                                  "roles (config/roles.yaml)"))

    def action(self, name: Any, path: tuple, ent: Any) -> None:
        if not isinstance(name, str):
            self.err(path, "an action is a name like orders.reserve_stock")
            return
        pair = self.known.actions.get(name)
        if pair is None:
            plugin = name.split(".", 1)[0]
            if plugin in self.known.disabled_plugins:
                self.err(path, f"action '{name}' belongs to plugin '{plugin}', which is disabled (hint: "
                               f"enable it with 'dovetail plugins enable {plugin}' or remove the action)")
            else:
                self.err(path, f"unknown action '{name}'" + _hint_names(name, self.known.actions,
                                                                        "actions"))
            return
        action = pair[0]
        if ent is not None and action.entities and ent.name not in action.entities:
            self.err(path, f"action '{name}' is only for {', '.join(action.entities)}, not "
                           f"'{ent.name}' (hint: choose an action made for '{ent.name}')")

    def guard(self, source: Any, path: tuple, ent: Any) -> None:
        if not isinstance(source, str):
            self.err(path, "guard must be an expression in quotes (hint: guard: \"order.total > 0\")")
            return
        names: dict[str, Any] = {"user": USER_NAMES}
        if ent is not None:
            names.update({k: tuple(v) for k, v in ent.context_names.items()})
        for offset, message in check_expression(source, names):
            if message.startswith("syntax error") and offset == 0 and source.strip():
                # Python reports an expression cut short at offset 0: point at its last character.
                offset = len(source.rstrip()) - 1
                message = f"syntax error: the expression ends too early, after '{source.rstrip()[-1]}'"
            m = re.match(r"unknown name '(\w+)\.(\w+)'", message)
            if m and m.group(1) in names and names[m.group(1)]:
                close = difflib.get_close_matches(m.group(2), list(names[m.group(1)]), n=1)
                if close:
                    message += f" (hint: did you mean '{m.group(1)}.{close[0]}'?)"
            line, col = self.guard_position(path, source, offset)
            known = ", ".join(sorted(names)) + ", " + ", ".join(sorted(FUNCTIONS))
            hint = "" if "known" in message or "(hint:" in message else f" (hint: guards may use {known})"
            self.at(line, col, f"guard: {message}{hint}")

    def guard_position(self, path: tuple, source: str, offset: int) -> tuple[int, int]:
        """File line/column of character ``offset`` of the guard text."""
        line, col = self.doc.mark(path)
        text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        first = text[col - 1:col] if col - 1 < len(text) else ""
        if first in ("'", '"'):
            return line, col + 1 + offset
        if first in ("|", ">"):
            for n in range(line, len(self.lines)):
                body = self.lines[n]
                if body.strip():
                    indent = len(body) - len(body.lstrip())
                    return n + 1, indent + 1 + offset
        return line, col + offset

    def inputs(self, value: Any, path: tuple) -> None:
        inputs = self.mapping(value, path, "inputs")
        for key, spec in inputs.items():
            p = path + (key,)
            if not isinstance(key, str) or not KEY_RE.match(key):
                self.err(p, f"input key '{key}' must be lower_snake_case", key=True)
            spec = self.mapping(spec, p, f"input '{key}'")
            self.keys(spec, p, INPUT_KEYS, f"input '{key}'")
            self.label(spec.get("label"), p + ("label",))
            typ = spec.get("type", "string")
            if typ not in INPUT_TYPES:
                self.err(p + ("type",), f"unknown input type '{typ}'" + _hint_names(typ, INPUT_TYPES, "types"))
            self.boolean(spec.get("required"), p + ("required",), "required")
            ml = spec.get("max_length")
            if ml is not None and (not isinstance(ml, int) or isinstance(ml, bool) or ml < 1):
                self.err(p + ("max_length",), f"max_length must be a positive whole number, got {ml!r}")
            pattern = spec.get("pattern")
            if pattern is not None:
                try:
                    re.compile(str(pattern))
                except re.error as exc:
                    self.err(p + ("pattern",), f"pattern is not a valid regular expression: {exc}")
            choices = spec.get("choices")
            if choices is not None and (not isinstance(choices, list) or not choices):
                self.err(p + ("choices",), "choices must be a non-empty list (hint: choices: [a, b])")

    def approvals(self, value: Any, path: tuple) -> None:
        if not isinstance(value, Mapping):
            self.err(path, "approvals must be a mapping (hint: approvals: {role: manager, count: 2})")
            return
        self.keys(value, path, APPROVAL_KEYS, "approvals")
        if "role" not in value:
            self.err(path, "approvals need a role (hint: approvals: {role: manager, count: 2})")
        else:
            self.role(value["role"], path + ("role",))
        count = value.get("count")
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            self.err(path + ("count",) if "count" in value else path,
                     f"approvals count must be a whole number of at least 1, got {count!r}")

    def reachability(self, states: Mapping, transitions: Mapping) -> None:
        initial = [k for k, s in states.items() if s.get("initial") is True]
        if not initial:
            return
        edges: dict[str, set[str]] = {}
        outgoing: set[str] = set()
        for t in transitions.values():
            if not isinstance(t, Mapping):
                continue
            src = t.get("from")
            srcs = src if isinstance(src, list) else [src]
            for s in srcs:
                if isinstance(s, str) and isinstance(t.get("to"), str):
                    edges.setdefault(s, set()).add(t["to"])
                    outgoing.add(s)
        seen = set(initial)
        todo = list(initial)
        while todo:
            for nxt in edges.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        for key, s in states.items():
            if key not in seen:
                self.err(("states", key), f"state '{key}' is unreachable from the initial state "
                                          f"'{initial[0]}' (hint: add a transition to it or remove it)",
                         key=True)
            elif key not in outgoing and s.get("final") is not True:
                self.warn(("states", key), f"state '{key}' has no way out and is not final "
                                           "(hint: add final: true or a transition from it)", key=True)

    def state_map(self, data: Mapping, states: Mapping, ent: Any) -> None:
        smap = self.mapping(data.get("state_map"), ("state_map",), "state_map")
        for old, new in smap.items():
            p = ("state_map", old)
            if old in states:
                self.err(p, f"state_map maps '{old}', which this file still has (hint: only removed "
                            "states are mapped)", key=True)
            if not isinstance(new, str) or new not in states:
                self.err(p, f"state_map sends '{old}' to unknown state '{new}'" + _hint_names(
                    new, states, "states"))


def check_text(text: str, file: str, known: Known, *, counter: Counter | None = None,
               taken: Mapping[str, str] | None = None,
               in_force: Callable[[str], Machine | None] | None = None) -> Result:
    """Check one workflow file's text; ``counter`` compares with the records in the database.

    ``taken`` maps entity names to the file already defining them (one workflow per entity);
    ``in_force`` gives the version running now, to warn about states the file drops.
    """
    result = Result(file)
    doc, issues = parse(text, file)
    result.issues.extend(issues)
    if doc is None:
        return result
    result.data = doc.data
    checker = _Checker(doc, text, known, result)
    checker.run()
    if result.skipped:
        result.issues = []
        return result
    ent = known.entities.get(result.entity or "")
    if ent is not None and taken and result.entity in taken and taken[result.entity] != file:
        checker.err(("entity",), f"entity '{result.entity}' already has a workflow in "
                                 f"{taken[result.entity]} (hint: one file per entity)")
    counted: Mapping[str, int] = {}
    if ent is not None and counter is not None and isinstance(doc.data.get("states"), Mapping):
        states = {k for k in doc.data["states"] if isinstance(k, str)}
        smap = doc.data.get("state_map") if isinstance(doc.data.get("state_map"), Mapping) else {}
        counted = counter(ent, ent.state_field, states)
        for state, count in sorted(counted.items()):
            target = smap.get(state)
            if target is None:
                checker.err(("states",), f"{count} {ent.name} record(s) are in state '{state}', which this "
                                         f"file removes (hint: add state_map: {{{state}: <surviving state>}} "
                                         "or keep the state)", key=True)
            elif target in states:
                result.moves[state] = (target, count)
    if ent is not None and in_force is not None and isinstance(doc.data.get("states"), Mapping):
        running = in_force(ent.name)
        if running is not None:
            for gone in running.states:
                if gone not in doc.data["states"] and gone not in counted:
                    checker.warn(("states",), f"removes state '{gone}' of the version in force ({running.source}, "
                                              f"version {running.version}); no record is in it", key=True)
    result.issues.sort(key=lambda i: (i.line, i.column, i.message))
    if result.ok:
        try:
            data = {**doc.data, "field": doc.data.get("field") or ent.state_field}
            result.machine = machine_from_dict(data, name=_stem(file), source=file)
        except Exception as exc:  # noqa: BLE001 - the check above should have caught it; report, never crash
            result.issues.append(ConfigIssue(file, 1, 1, f"cannot build the workflow: {exc}"))
    return result


def _stem(file: str) -> str:
    name = file.replace("\\", "/").rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[0] if "." in name else name
