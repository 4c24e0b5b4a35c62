"""The expression language's tokens: names, #name and :value placeholders, list
indexes, punctuation and comparators. Keywords are names the parser recognises."""

from __future__ import annotations

import re
from dataclasses import dataclass

from unkai.services.dynamodb.errors import validation

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<ref>\#[A-Za-z0-9_]+)
  | (?P<value>:[A-Za-z0-9_]+)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<int>[0-9]+)
  | (?P<op><>|<=|>=|[=<>(),.\[\]+\-])
""", re.VERBOSE)

EOF = "<EOF>"


@dataclass(slots=True)
class Token:
    kind: str  # name, ref, value, int, op, eof
    text: str
    start: int
    end: int


def tokenize(text: str, kind: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    n = len(text)
    while pos < n:
        m = _TOKEN.match(text, pos)
        if m is None:
            near = text[tokens[-1].start if tokens else pos: pos + 1]
            raise validation(f'Invalid {kind}: Syntax error; token: "{text[pos]}", near: "{near}"')
        group = m.lastgroup
        if group != "ws":
            tokens.append(Token(group, m.group(), pos, m.end()))
        pos = m.end()
    tokens.append(Token("eof", EOF, n, n))
    return tokens
