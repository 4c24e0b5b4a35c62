"""The event feed: what happens in the cloud, read by tests, the terminal and the dashboard."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request

import pytest

from tests.lambda_code import call, deploy


def test_an_invocation_appears_in_the_feed_with_its_outcome(unkai):
    lam = unkai.client("lambda")
    start = unkai.get("/_unkai/feed")["last"]
    ok = deploy(lam, "def handler(event, context):\n    return event\n")
    bad = deploy(lam, "def handler(event, context):\n    raise ValueError('nope')\n")
    resp, _ = call(lam, ok, {"x": 1})
    call(lam, bad)
    events = [e for e in unkai.feed(after=start, kind="lambda.") if e["function"] in (ok, bad)]
    assert [(e["function"], e["status"]) for e in events] == [(ok, "ok"), (bad, "error")]
    assert resp["StatusCode"] == 200 and len(events[0]["request_id"]) == 36
    assert events[1]["error_type"] == "ValueError"
    assert events[0]["cold"] is True and events[0]["duration_ms"] > 0
    assert events[0]["id"] < events[1]["id"]


def test_a_reader_waiting_on_the_feed_wakes_when_an_event_arrives(unkai):
    lam = unkai.client("lambda")
    name = deploy(lam, "def handler(event, context):\n    return 1\n")
    last = unkai.get("/_unkai/feed")["last"]
    got: list = []
    reader = threading.Thread(target=lambda: got.extend(unkai.feed(after=last, kind="lambda.", wait=20)))
    started = time.monotonic()
    reader.start()
    call(lam, name)
    reader.join(25)
    assert any(e["function"] == name for e in got)
    assert time.monotonic() - started < 15  # woken by the event, not by the wait's end


@pytest.mark.parametrize("query", ["after=-1", "after=x", "wait=inf", "wait=61", "wait=nan"])
def test_bad_feed_parameters_answer_400(unkai, query):
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(unkai.url(f"/_unkai/feed?{query}"), timeout=10)
    assert err.value.code == 400
    assert "message" in json.loads(err.value.read())
