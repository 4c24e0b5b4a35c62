"""Which of a bus's rules an event can match, without evaluating every pattern.

A rule whose pattern's top-level ``source`` (or, failing that, ``detail-type``) is a list
of plain strings can only match an event whose value there is one of those strings (or an
array holding one): EventBridge compares such values exactly. ``RuleSet`` indexes those
rules by that literal, so PutEvents to a bus with many rules evaluates only the rules that
name the event's source, plus the rules that cannot be indexed. Candidates keep the bus's
rule order, and each is still matched in full, by its pattern's ``unkai.patterns.matcher``."""

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

    def __init__(self, rules: list[tuple[Any, Callable[[Any], bool], tuple[str, frozenset[str]] | None]]) -> None:
        self.rules = [(rule, match) for rule, match, _ in rules]
        self._index: dict[str, dict[str, list[int]]] = {}
        self._rest: list[int] = []
        self._targets: dict[int, list[dict[str, Any]]] = {}
        for i, (_, _, key) in enumerate(rules):
            if key is None:
                self._rest.append(i)
                continue
            field, values = key
            by_value = self._index.setdefault(field, {})
            for value in values:
                by_value.setdefault(value, []).append(i)

    def __iter__(self) -> Iterator[tuple[Any, Callable[[Any], bool]]]:
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def candidates(self, event: Any) -> list[tuple[Any, Callable[[Any], bool]]]:
        """The rules that may match ``event``, each with its pattern's matcher, in the bus's rule order."""
        if not self._index:
            return self.rules
        rest = self._rest
        picked: list[int] | set[int] | None = None  # one literal's rules (a list, in order), or a merge of several
        for field, by_value in self._index.items():
            have = event.get(field) if isinstance(event, dict) else None
            for value in have if isinstance(have, list) else (have,):
                if type(value) is str:
                    hits = by_value.get(value)
                    if hits:
                        picked = hits if picked is None else set(picked).union(hits)
        rules = self.rules
        if picked is None:
            return [rules[i] for i in rest]
        if not rest and type(picked) is list:  # the usual case: the rules of one source, already in order
            return [rules[i] for i in picked]
        return [rules[i] for i in sorted(set(picked).union(rest))]

    def targets(self, rule_id: int, read: Callable[[int], list[dict[str, Any]]]) -> list[dict[str, Any]]:
        """A rule's targets, read and parsed once for as long as this set is current. Shared by
        every delivery from this set, so they are read-only."""
        found = self._targets.get(rule_id)
        if found is None:
            found = self._targets[rule_id] = read(rule_id)
        return found
