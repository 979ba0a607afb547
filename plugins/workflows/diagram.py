"""State diagrams of a workflow: Mermaid ``stateDiagram-v2``, Graphviz dot, and a small SVG."""

from __future__ import annotations

from html import escape
from typing import Any

from markupsafe import Markup

from core.statemachine import Machine


def _en(label: Any, default: str) -> str:
    if isinstance(label, dict) or hasattr(label, "get"):
        return label.get("en") or next(iter(label.values()), default)
    return str(label or default)


def edges(machine: Machine) -> list[tuple[str, str, str]]:
    """Every (from, to, transition key) edge, in file order."""
    return [(src, t.target, t.key) for t in machine.transitions.values() for src in t.sources]


def mermaid(machine: Machine) -> str:
    lines = ["stateDiagram-v2", f"    %% {machine.name} ({machine.entity}.{machine.field}) "
                                f"version {machine.version} from {machine.source}"]
    for s in machine.states.values():
        lines.append(f'    state "{_en(s.label, s.key)}" as {s.key}')
    for s in machine.states.values():
        if s.initial:
            lines.append(f"    [*] --> {s.key}")
    for src, dst, key in edges(machine):
        t = machine.transitions[key]
        extra = []
        if t.roles:
            extra.append("roles: " + ", ".join(t.roles))
        if t.guard:
            extra.append("guarded")
        suffix = f" [{'; '.join(extra)}]" if extra else ""
        lines.append(f"    {src} --> {dst}: {key}{suffix}")
    for s in machine.states.values():
        if s.final:
            lines.append(f"    {s.key} --> [*]")
    return "\n".join(lines) + "\n"


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def dot(machine: Machine) -> str:
    lines = [f'digraph "{_dot_text(machine.name)}" {{', "    rankdir=LR;",
             '    node [shape=box, style=rounded, fontname="sans-serif"];',
             '    __start [shape=point, label=""];']
    for s in machine.states.values():
        shape = ", peripheries=2" if s.final else ""
        lines.append(f'    "{s.key}" [label="{_dot_text(_en(s.label, s.key))}"{shape}];')
    for s in machine.states.values():
        if s.initial:
            lines.append(f'    __start -> "{s.key}";')
    for src, dst, key in edges(machine):
        lines.append(f'    "{src}" -> "{dst}" [label="{_dot_text(key)}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def layers(machine: Machine) -> list[list[str]]:
    """States grouped by distance from the initial state (unreachable ones last)."""
    dist: dict[str, int] = {}
    start = [s.key for s in machine.states.values() if s.initial]
    todo = list(start)
    for s in start:
        dist[s] = 0
    while todo:
        cur = todo.pop(0)
        for src, dst, _k in edges(machine):
            if src == cur and dst not in dist:
                dist[dst] = dist[cur] + 1
                todo.append(dst)
    depth = max(dist.values(), default=0)
    out: list[list[str]] = [[] for _ in range(depth + 1)]
    rest = []
    for key in machine.states:
        if key in dist:
            out[dist[key]].append(key)
        else:
            rest.append(key)
    if rest:
        out.append(rest)
    return out


def svg(machine: Machine, label: Any = None) -> Markup:
    """A simple layered SVG drawing (no JavaScript, no CDN): boxes by depth, arrows per edge.

    ``label(item)`` names a state's box and a transition's arrow (default: the English label);
    the web page passes the reader's language. Returned as ``Markup`` so a template embeds it
    as is: every name and label from the workflow file is escaped here, where the drawing is
    built."""
    label = label or (lambda s: _en(s.label, s.key))
    w, h, gx, gy = 150, 40, 70, 30
    pos: dict[str, tuple[int, int]] = {}
    cols = layers(machine)
    for ci, col in enumerate(cols):
        for ri, key in enumerate(col):
            pos[key] = (20 + ci * (w + gx), 20 + ri * (h + gy))
    width = 40 + len(cols) * (w + gx)
    height = 40 + max((len(c) for c in cols), default=1) * (h + gy) + 40
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="workflow-diagram" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" role="img" aria-label="{escape(machine.name)}">',
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" '
             'markerHeight="8" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>']
    seen: dict[tuple[str, str], int] = {}
    for src, dst, key in edges(machine):
        (x1, y1), (x2, y2) = pos[src], pos[dst]
        n = seen.get((src, dst), 0)
        seen[(src, dst)] = n + 1
        sx, sy = x1 + w, y1 + h // 2 + n * 8
        ex, ey = x2, y2 + h // 2 + n * 8
        if x2 <= x1:  # backwards or same column: arc below the boxes
            sx, sy, ex, ey = x1 + w // 2, y1 + h, x2 + w // 2, y2 + h
            mid = max(y1, y2) + h + 30 + n * 10
            path = f"M{sx},{sy} C{sx},{mid} {ex},{mid} {ex},{ey}"
            tx, ty = (sx + ex) // 2, mid - 4
        else:
            path = f"M{sx},{sy} L{ex},{ey}"
            tx, ty = (sx + ex) // 2, (sy + ey) // 2 - 4
        parts.append(f'<path d="{path}" fill="none" stroke="#555" marker-end="url(#arrow)" '
                     f'data-edge="{escape(src)}-&gt;{escape(dst)}"/>')
        parts.append(f'<text x="{tx}" y="{ty}" font-size="11" text-anchor="middle" fill="#333">'
                     f'{escape(str(label(machine.transitions[key])))}</text>')
    for s in machine.states.values():
        x, y = pos[s.key]
        stroke = "#2a7" if s.initial else ("#a33" if s.final else "#336")
        width_ = 3 if (s.initial or s.final) else 1.5
        parts.append(f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="8" fill="#f6f8fb" stroke="{stroke}" '
                     f'stroke-width="{width_}" data-state="{escape(s.key)}"/>')
        parts.append(f'<text x="{x + w // 2}" y="{y + h // 2 + 4}" font-size="13" text-anchor="middle">'
                     f'{escape(str(label(s)))}</text>')
    parts.append("</svg>")
    return Markup("\n".join(parts))


def describe(machine: Machine) -> dict[str, Any]:
    """Plain data for the API: states, transitions and both diagram texts."""
    return {
        "name": machine.name, "entity": machine.entity, "field": machine.field, "source": machine.source,
        "version": machine.version,
        "states": [{"key": s.key, "label": dict(s.label), "initial": s.initial, "final": s.final}
                   for s in machine.states.values()],
        "transitions": [{"key": t.key, "from": list(t.sources), "to": t.target, "label": dict(t.label),
                         "permission": t.permission, "roles": list(t.roles), "guard": t.guard,
                         "guard_message": t.guard_message, "actions": list(t.actions),
                         "comment_required": t.comment_required,
                         "inputs": [{"key": i.key, "label": dict(i.label), "type": i.type,
                                     "required": i.required, "max_length": i.max_length,
                                     "pattern": i.pattern, "choices": list(i.choices)} for i in t.inputs],
                         "approvals": ({"role": t.approvals_role, "count": t.approvals_count}
                                       if t.approvals_count else None)}
                        for t in machine.transitions.values()],
        "state_map": dict(machine.state_map),
        "mermaid": mermaid(machine), "dot": dot(machine),
    }
