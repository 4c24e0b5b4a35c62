"""Which of a bus's rules an event can match, without evaluating every pattern.

A rule whose pattern's top-level ``source`` (or, failing that, ``detail-type``) is a list
of plain strings can only match an event whose value there is one of those strings (or an
array holding one): EventBridge compares such values exactly. ``RuleSet`` indexes those
rules by that literal, so PutEvents to a bus with many rules evaluates only the rules that
name the event's source, plus the rules that cannot be indexed. Candidates keep the bus's
rule order, and each is still matched in full by ``unkai.patterns.matches``."""

from __future__ import annotations

from typing import Any, Callable, Iterator

INDEX_KEYS = ("source", "detail-type")


def index_key(pattern: dict[str, Any]) -> tuple[str, frozenset[str]] | None:
    """The top-level field and the exact strings ``pattern`` requires there, or None when
    the pattern does not pin one (operators, non-string values, only nested fields)."""
    for key in INDEX_KEYS:
        want = pattern.get(key)
        if isinstance(want, list) and want and all(type(v) is str for v in want):
            return key, frozenset(want)
    return None


class RuleSet:
    """A bus's enabled pattern rules, in order, indexed by their pinned literal."""

    __slots__ = ("rules", "_index", "_rest", "_targets")

    def __init__(self, rules: list[tuple[Any, dict[str, Any], tuple[str, frozenset[str]] | None]]) -> None:
        self.rules = [(rule, pattern) for rule, pattern, _ in rules]
        self._index: dict[str, dict[str, list[int]]] = {}
        self._rest: list[int] = []
        self._targets: dict[int, list[str]] = {}
        for i, (_, _, key) in enumerate(rules):
            if key is None:
                self._rest.append(i)
                continue
            field, values = key
            by_value = self._index.setdefault(field, {})
            for value in values:
                by_value.setdefault(value, []).append(i)

    def __iter__(self) -> Iterator[tuple[Any, dict[str, Any]]]:
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def candidates(self, event: Any) -> list[tuple[Any, dict[str, Any]]]:
        """The rules that may match ``event``, in the bus's rule order."""
        if not self._index:
            return self.rules
        picked = set(self._rest)
        for field, by_value in self._index.items():
            have = event.get(field) if isinstance(event, dict) else None
            for value in have if isinstance(have, list) else (have,):
                if type(value) is str:
                    hits = by_value.get(value)
                    if hits:
                        picked.update(hits)
        rules = self.rules
        return [rules[i] for i in sorted(picked)]

    def targets(self, rule_id: int, read: Callable[[int], list[str]]) -> list[str]:
        """A rule's targets (their stored JSON), read once for as long as this set is current."""
        texts = self._targets.get(rule_id)
        if texts is None:
            texts = self._targets[rule_id] = read(rule_id)
        return texts
