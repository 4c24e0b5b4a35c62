"""StartLiveTail: an event-stream answer (``application/vnd.amazon.eventstream``, the framing
of ``unkai/protocol/eventstream.py``) that boto3 reads as ``responseStream``.

As AWS sends it: an ``initial-response``, then one ``sessionStart`` echoing the request, then
``sessionUpdate`` event every second while the call is open, each with the events stored since
the last one in the session's log groups (optionally only some streams or stream prefixes, and
only those the filter pattern matches; the same pattern engine as FilterLogEvents), empty when
there were none; past 500 events an update carries 500 spread over them and says ``sampled``
(AWS's API reference). A session ends when the client goes or after AWS's 3 hours on unkai's clock, with a
``SessionTimeoutException`` event. At most 15 sessions are open per account and region
(AWS's quota): one more is refused with ``LimitExceededException``.

Clients must not send the operation's ``stream-`` host prefix to a local endpoint: use
``botocore.config.Config(inject_host_prefix=False)``."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from typing import Any

from unkai.http import Response
from unkai.protocol import ServiceError, awsjson, eventstream, models
from unkai.services import RequestContext
from unkai.services.logs.patterns import compile_pattern

MAX_SESSIONS = 15  # AWS: concurrent Live Tail sessions per account and region
MAX_EVENTS = 500  # AWS: log events in one sessionUpdate
SESSION_SECONDS = 3 * 3600  # AWS: a session lasts at most 3 hours
TICK = 1.0  # seconds between two sessionUpdate events


def _invalid(message: str) -> ServiceError:
    return ServiceError("InvalidParameterException", message)


class LiveTail:
    """Mixed into the Logs service."""

    store: Any
    clock: Any
    cloud: Any

    def _live_sessions(self) -> Counter:
        sessions = getattr(self, "_live", None)
        if sessions is None:
            sessions = self._live = Counter()  # type: ignore[attr-defined]
        return sessions

    def _tail_groups(self, ctx: RequestContext, identifiers: list[str]) -> list[tuple[int, str, str]]:
        """(group id, group name, identifier as given) of each identifier; ResourceNotFoundException
        for a group that does not exist."""
        groups = []
        for ident in identifiers:
            if ident.endswith("*"):
                raise _invalid(f"LogGroupIdentifier {ident} is invalid: the ARN cannot end with '*'")
            name = ident.split(":log-group:", 1)[1] if ":log-group:" in ident else ident
            if ident.startswith("arn:") and ident.split(":")[4:5] != [ctx.account]:
                raise ServiceError("ResourceNotFoundException", f"Log group {ident} does not exist.")
            row = self.store.one("SELECT id FROM logs_groups WHERE account=? AND region=? AND name=?",
                                 (ctx.account, ctx.region, name))
            if row is None:
                raise ServiceError("ResourceNotFoundException", "The specified log group does not exist.")
            groups.append((row[0], name, ident))
        return groups

    async def start_live_tail(self, ctx: RequestContext, params: dict) -> Response:
        identifiers = params.get("logGroupIdentifiers") or []
        if not 1 <= len(identifiers) <= 10:
            raise _invalid("logGroupIdentifiers must contain between 1 and 10 log groups.")
        names, prefixes = params.get("logStreamNames"), params.get("logStreamNamePrefixes")
        if names and prefixes:
            raise _invalid("logStreamNames and logStreamNamePrefixes are mutually exclusive.")
        if (names or prefixes) and len(identifiers) != 1:
            raise _invalid("When logStreamNames or logStreamNamePrefixes is specified, logGroupIdentifiers must "
                           "contain exactly one log group.")
        try:
            match = compile_pattern(params.get("logEventFilterPattern"))
        except ValueError as exc:
            raise _invalid(str(exc)) from None
        with self.store.transaction():
            groups = self._tail_groups(ctx, identifiers)
            last = self.store.one("SELECT max(id) FROM logs_events")[0] or 0
        sessions = self._live_sessions()
        key = (ctx.account, ctx.region)
        if sessions[key] >= MAX_SESSIONS:
            raise ServiceError("LimitExceededException", f"You have reached the maximum number of concurrent Live "
                               f"Tail sessions ({MAX_SESSIONS}).")
        model = models.load_model("logs")
        start_shape = model.shape_for("LiveTailSessionStart")
        update_shape = model.shape_for("LiveTailSessionUpdate")
        start = {"requestId": ctx.request_id, "sessionId": str(uuid.uuid4()), "logGroupIdentifiers": identifiers}
        for field in ("logStreamNames", "logStreamNamePrefixes", "logEventFilterPattern"):
            if params.get(field):
                start[field] = params[field]
        by_id = {gid: ident for gid, _, ident in groups}
        placeholders = ",".join("?" * len(by_id))
        request = ctx.request

        def read(after: int) -> tuple[list[dict], int, bool]:
            with self.store.transaction():
                rows = self.store.all(
                    "SELECT e.id, e.ts, e.ingest, e.message, s.name, s.group_id FROM logs_events e JOIN logs_streams s "
                    f"ON s.id=e.stream_id WHERE e.id>? AND s.group_id IN ({placeholders}) ORDER BY e.id LIMIT 10000",
                    (after, *by_id))
            results = []
            for event_id, ts, ingest, message, stream, gid in rows:
                after = event_id
                if names and stream not in names:
                    continue
                if prefixes and not any(stream.startswith(p) for p in prefixes):
                    continue
                if not match(message):
                    continue
                results.append({"logStreamName": stream, "logGroupIdentifier": by_id[gid], "message": message,
                                "timestamp": ts, "ingestionTime": ingest})
            if len(results) > MAX_EVENTS:  # sampled down to 500, spread over the second's events
                step = len(results) / MAX_EVENTS
                return [results[int(i * step)] for i in range(MAX_EVENTS)], after, True
            return results, after, False

        async def events():
            # counted while the stream runs: a response never sent (the client gone first, a HEAD)
            # never starts this generator, so it must not hold one of the account's sessions
            sessions[key] += 1
            gone = asyncio.ensure_future(request.disconnected())
            deadline = self.clock.now() + SESSION_SECONDS
            position = last
            try:
                yield eventstream.encode_message({":message-type": "event", ":event-type": "initial-response",
                                                  ":content-type": "application/json"}, b"{}")
                yield eventstream.event("sessionStart", awsjson.dumps(awsjson.encode(start_shape, start)))
                while not gone.done():
                    if self.clock.now() >= deadline:
                        yield eventstream.encode_message(
                            {":message-type": "exception", ":exception-type": "SessionTimeoutException",
                             ":content-type": "application/json"},
                            json.dumps({"message": "Live Tail session has ended after reaching the maximum "
                                        "session duration of 3 hours."}).encode())
                        return
                    await asyncio.wait({gone}, timeout=TICK)  # AWS: one update every second
                    if gone.done():
                        return
                    results, position, sampled = read(position)
                    update = {"sessionMetadata": {"sampled": sampled}, "sessionResults": results}
                    yield eventstream.event("sessionUpdate", awsjson.dumps(awsjson.encode(update_shape, update)))
            finally:
                gone.cancel()
                sessions[key] -= 1

        return Response(200, [("content-type", eventstream.CONTENT_TYPE), ("x-amzn-requestid", ctx.request_id)],
                        events())
