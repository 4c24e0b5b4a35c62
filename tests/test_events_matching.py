"""PutEvents routing on a bus with many rules of every pattern kind: rules are indexed by
the literal ``source``/``detail-type`` they pin (unkai/services/events/matching.py), and
the rules an event reaches must be exactly those whose pattern matches it, as
TestEventPattern (which evaluates the pattern itself) answers; a changed or disabled rule
routes by its new state at once (rules and targets are kept in memory
between calls until any rule or target changes)."""

from __future__ import annotations

import json
import uuid

from unkai.testing import new_queue, receive_all

PATTERNS = {
    "lit": {"source": ["a"]},
    "lit2": {"source": ["a", "b"], "detail-type": ["t"]},
    "dt": {"detail-type": ["t2"]},
    "prefix": {"source": [{"prefix": "a"}]},
    "mixed": {"source": ["c", {"prefix": "zz"}]},
    "but": {"source": [{"anything-but": "a"}], "detail-type": ["x"]},
    "or": {"$or": [{"source": ["b"]}, {"detail-type": ["t"]}]},
    "detail": {"detail": {"n": [1]}},
    "absent": {"source": [{"exists": False}], "detail-type": ["t"]},
    "case": {"source": ["A"]},
    "nested-source": {"detail": {"source": ["a"]}},
    "number": {"source": ["1"]},
    # patterns compiled to matchers (unkai.patterns.matcher): numeric ranges, string lists against arrays
    "range": {"detail": {"n": [{"numeric": [">", 1, "<=", 2]}]}},
    "range-or-literal": {"source": ["a", "d"], "detail": {"n": [{"numeric": ["=", 5]}, 1]}},
    "tags": {"detail": {"tags": ["x", "z"]}},
}
EVENTS = [("a", "t", {"n": 1}), ("b", "t2", {}), ("A", "x", {"source": "a"}), ("zzz", "t", {"n": 1}),
          ("c", "y", {"n": 2}), ("1", "x", {}), ("nobody", "none", {}), ("d", "t3", {"tags": ["y", "x"], "n": True}),
          ("d", "t3", {"n": [7, 1.5], "tags": "zz"})]


def routed(unkai, events, sqs, url: str, bus: str) -> set[tuple[str, int]]:
    sent = events.put_events(Entries=[{"Source": s, "DetailType": t, "Detail": json.dumps(d), "EventBusName": bus}
                                      for s, t, d in EVENTS])
    assert sent["FailedEntryCount"] == 0
    ids = {e["EventId"]: i for i, e in enumerate(sent["Entries"])}
    unkai.drain()
    got = [json.loads(b) for b in receive_all(sqs, url)]
    pairs = {(b["rule"], ids[b["id"]]) for b in got}
    assert len(pairs) == len(got)  # each matching rule delivers each event once
    return pairs


def expected(events, patterns: dict[str, dict]) -> set[tuple[str, int]]:
    out = set()
    for name, pattern in patterns.items():
        for i, (source, detail_type, detail) in enumerate(EVENTS):
            event = {"id": str(i), "account": "000000000000", "source": source, "time": "2026-01-01T00:00:00Z",
                     "region": "us-east-1", "resources": [], "detail-type": detail_type, "detail": detail}
            if events.test_event_pattern(EventPattern=json.dumps(pattern), Event=json.dumps(event))["Result"]:
                out.add((name, i))
    return out


def test_indexed_routing_reaches_exactly_the_matching_rules(unkai):
    events, sqs = unkai.client("events"), unkai.client("sqs")
    bus = f"many-{uuid.uuid4().hex[:8]}"
    events.create_event_bus(Name=bus)
    url, arn = new_queue(sqs)
    target = {"Id": "q", "Arn": arn, "InputTransformer": {
        "InputPathsMap": {"id": "$.id"}, "InputTemplate": '{"rule": "<aws.events.rule-name>", "id": "<id>"}'}}
    for name, pattern in PATTERNS.items():
        events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(pattern))
        events.put_targets(Rule=name, EventBusName=bus, Targets=[target])

    want = expected(events, PATTERNS)
    # spot checks that pin the oracle itself
    assert {("lit", 0), ("lit2", 0), ("prefix", 0), ("or", 0), ("detail", 0)} <= want
    assert ("case", 2) in want and ("lit", 2) not in want and ("nested-source", 2) in want
    assert ("mixed", 3) in want and ("mixed", 4) in want and ("number", 5) in want
    assert not any(i == 6 for _, i in want) and not any(name == "absent" for name, _ in want)
    assert {("range", 4), ("range", 8), ("range-or-literal", 0), ("tags", 7)} <= want
    assert not {("range", 0), ("range", 7), ("range-or-literal", 7), ("range-or-literal", 3), ("tags", 8)} & want
    assert routed(unkai, events, sqs, url, bus) == want

    # a changed pattern and a disabled rule take effect on the next PutEvents
    changed = dict(PATTERNS, lit={"source": ["c"]})
    events.put_rule(Name="lit", EventBusName=bus, EventPattern=json.dumps(changed["lit"]))
    events.disable_rule(Name="or", EventBusName=bus)
    del changed["or"]
    want = expected(events, changed)
    assert ("lit", 4) in want and ("lit", 0) not in want
    assert routed(unkai, events, sqs, url, bus) == want
    events.enable_rule(Name="or", EventBusName=bus)
    events.delete_rule(Name="dt", EventBusName=bus, Force=True)
    changed["or"] = PATTERNS["or"]
    del changed["dt"]
    assert routed(unkai, events, sqs, url, bus) == expected(events, changed)

    # targets read from memory follow RemoveTargets/PutTargets at once too
    events.remove_targets(Rule="detail", EventBusName=bus, Ids=["q"])
    del changed["detail"]
    assert routed(unkai, events, sqs, url, bus) == expected(events, changed)
    renamed = dict(target, InputTransformer=dict(target["InputTransformer"],
                                                 InputTemplate='{"rule": "renamed", "id": "<id>"}'))
    events.put_targets(Rule="case", EventBusName=bus, Targets=[renamed])
    got = routed(unkai, events, sqs, url, bus)
    assert ("renamed", 2) in got and not any(name == "case" for name, _ in got)
