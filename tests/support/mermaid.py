"""A strict reader of the Mermaid ``sequenceDiagram`` subset that ``orderflow journey
--format mermaid`` writes, after Mermaid's own grammar: any other line is an error,
as is a participant used before it is declared, an unbalanced ``rect``/``end``, or a
``;`` or ``#`` that Mermaid would read as syntax (a statement break, an entity)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

PARTICIPANT = re.compile(r"^participant (?P<id>[A-Za-z][\w]*)(?: as (?P<name>.+))?$")
MESSAGE = re.compile(
    r"^(?P<src>[A-Za-z][\w]*)(?P<arrow>-->>|->>|--x|-x|-->|->)(?P<dst>[A-Za-z][\w]*): ?(?P<text>.*)$"
)
NOTE = re.compile(r"^Note (?P<where>over|left of|right of) (?P<ids>[\w]+(?:,\s*[\w]+)?): ?(?P<text>.*)$")
RECT = re.compile(r"^rect (rgb|rgba)\([\d\s.,]+\)$")
ENTITY = re.compile(r"#\d+;")


@dataclass
class Diagram:
    participants: dict[str, str] = field(default_factory=dict)  # id -> shown name, in order
    messages: list[tuple[str, str, str, str]] = field(default_factory=list)  # (from, arrow, to, text)
    notes: list[tuple[str, str]] = field(default_factory=list)  # (participant, text)
    failure_bands: int = 0


def parse(source: str) -> Diagram:
    lines = [line.strip() for line in source.splitlines() if line.strip()]
    if not lines or lines[0] != "sequenceDiagram":
        raise ValueError("not a sequenceDiagram")
    diagram, depth = Diagram(), 0

    def known(pid: str, line: str) -> str:
        if pid not in diagram.participants:
            raise ValueError(f"undeclared participant {pid!r}: {line}")
        return pid

    for line in lines[1:]:
        bare = ENTITY.sub("", line)
        if ";" in bare or "#" in bare:
            raise ValueError(f"unescaped ';' or '#': {line}")
        if m := PARTICIPANT.match(line):
            if diagram.messages or diagram.notes:
                raise ValueError(f"participant declared after the first message: {line}")
            diagram.participants[m["id"]] = m["name"] or m["id"]
        elif m := MESSAGE.match(line):
            diagram.messages.append((known(m["src"], line), m["arrow"], known(m["dst"], line), m["text"]))
        elif m := NOTE.match(line):
            for pid in m["ids"].split(","):
                known(pid.strip(), line)
            diagram.notes.append((m["ids"], m["text"]))
        elif RECT.match(line):
            depth += 1
            diagram.failure_bands += 1
        elif line == "end":
            depth -= 1
            if depth < 0:
                raise ValueError("'end' without 'rect'")
        else:
            raise ValueError(f"not Mermaid sequenceDiagram syntax: {line}")
    if depth:
        raise ValueError("'rect' without 'end'")
    return diagram


def unescape(text: str) -> str:
    return ENTITY.sub(lambda m: chr(int(m.group()[1:-1])), text)
