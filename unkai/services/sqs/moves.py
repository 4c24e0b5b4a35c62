"""Dead-letter queue redrive: StartMessageMoveTask and its friends.

A task moves a DLQ's messages back to their source queues (or to a destination) in
batches, each batch one transaction, until the DLQ is empty, cancelled or failed;
running tasks resume after a restart.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from typing import Any

from unkai.ids import uuid4
from unkai.protocol import ServiceError
from unkai.services.sqs.errors import invalid
from unkai.services.sqs.queues import Queue


class MoveTasks:
    def __init__(self, sqs: Any) -> None:
        self.sqs = sqs
        self.store = sqs.store
        self.clock = sqs.clock
        self.running: dict[str, asyncio.Task] = {}

    def resume(self) -> None:
        for (task_id,) in self.store.all("SELECT task_id FROM sqs_move_tasks WHERE status='RUNNING'"):
            self.running[task_id] = asyncio.create_task(self._run(task_id))

    def stop(self) -> None:
        for task in self.running.values():
            task.cancel()

    def start(self, params: dict) -> dict:
        source = self.sqs.queue_by_arn(params["SourceArn"])
        if source is None:
            raise ServiceError("ResourceNotFoundException", "The resource that you specified for the SourceArn "
                               "parameter doesn't exist.")
        if not self._is_dead_letter_queue(source):
            raise invalid("Source queue must be configured as a Dead Letter Queue.")
        destination = params.get("DestinationArn")
        if destination and self.sqs.queue_by_arn(destination) is None:
            raise ServiceError("ResourceNotFoundException", "The resource that you specified for the "
                               "DestinationArn parameter doesn't exist.")
        rate = params.get("MaxNumberOfMessagesPerSecond")
        if rate is not None and not 1 <= rate <= 500:
            raise invalid("Value for parameter MaxNumberOfMessagesPerSecond is invalid. Reason: Must be between "
                           "1 and 500.")
        if self.store.one("SELECT 1 FROM sqs_move_tasks WHERE source_arn=? AND status='RUNNING'", (source.arn,)):
            raise ServiceError("UnsupportedOperation", "There is already a task running. Only one active task is "
                               "allowed for a source queue arn at a given time.")
        task_id = uuid4()
        to_move = self.store.one("SELECT COUNT(*) FROM sqs_messages WHERE queue_id=?", (source.id,))[0]
        self.store.execute(
            "INSERT INTO sqs_move_tasks(task_id, source_arn, destination_arn, max_per_second, status, to_move, started)"
            " VALUES(?,?,?,?,?,?,?)", (task_id, source.arn, destination, rate, "RUNNING", to_move, self.clock.now()))
        self.store.after_commit(lambda: self.running.__setitem__(task_id, asyncio.ensure_future(self._run(task_id))))
        handle = base64.b64encode(json.dumps({"taskId": task_id, "sourceArn": source.arn}).encode()).decode()
        return {"TaskHandle": handle}

    def _is_dead_letter_queue(self, queue: Queue) -> bool:
        for (attrs,) in self.store.all("SELECT attributes FROM sqs_queues WHERE account=? AND region=?",
                                       (queue.account, queue.region)):
            policy = json.loads(attrs).get("RedrivePolicy")
            if policy and json.loads(policy)["deadLetterTargetArn"] == queue.arn:
                return True
        return False

    async def _run(self, task_id: str) -> None:
        try:
            while True:
                row = self.store.one("SELECT source_arn, destination_arn, max_per_second, status FROM "
                                     "sqs_move_tasks WHERE task_id=?", (task_id,))
                if row is None or row[3] != "RUNNING":
                    return
                source_arn, destination_arn, rate, _ = row
                batch = rate or 500
                with self.store.transaction():
                    moved = self._move_batch(task_id, source_arn, destination_arn, batch)
                if moved == 0:
                    with self.store.transaction():
                        self.store.execute("UPDATE sqs_move_tasks SET status='COMPLETED' WHERE task_id=? AND "
                                           "status='RUNNING'", (task_id,))
                    return
                await asyncio.sleep(1.0 if rate else 0)
        finally:
            self.running.pop(task_id, None)

    def _move_batch(self, task_id: str, source_arn: str, destination_arn: str | None, limit: int) -> int:
        source = self.sqs.queue_by_arn(source_arn)
        if source is None:
            self.store.execute("UPDATE sqs_move_tasks SET status='FAILED', failure=? WHERE task_id=?",
                               ("AWS.SimpleQueueService.NonExistentQueue", task_id))
            return 0
        rows = self.store.all("SELECT id, dlq_source FROM sqs_messages WHERE queue_id=? ORDER BY id LIMIT ?",
                              (source.id, limit))
        moved = 0
        now = self.clock.now()
        for rowid, dlq_source in rows:
            target = self.sqs.queue_by_arn(destination_arn or dlq_source or "")
            if target is None:
                continue
            self.store.execute(
                "UPDATE sqs_messages SET queue_id=?, visible_at=?, receive_count=0, first_receive=NULL, receipt=NULL,"
                " dlq_source=NULL, expires=? WHERE id=?",
                (target.id, now, now + target.attr_int("MessageRetentionPeriod"), rowid))
            tid = target.id
            self.store.after_commit(lambda tid=tid: self.sqs.signals.notify(("sqs", tid)))
            moved += 1
        self.store.execute("UPDATE sqs_move_tasks SET moved=moved+? WHERE task_id=?", (moved, task_id))
        return moved

    def cancel(self, params: dict) -> dict:
        task_id = _task_id(params["TaskHandle"])
        row = self.store.one("SELECT status, moved FROM sqs_move_tasks WHERE task_id=?", (task_id,))
        if row is None or row[0] != "RUNNING":
            raise ServiceError("ResourceNotFoundException", "Task does not exist or is not running.")
        self.store.execute("UPDATE sqs_move_tasks SET status='CANCELLED' WHERE task_id=?", (task_id,))
        return {"ApproximateNumberOfMessagesMoved": row[1]}

    def list(self, params: dict) -> dict:
        source = self.sqs.queue_by_arn(params["SourceArn"])
        if source is None:
            raise ServiceError("ResourceNotFoundException", "The resource that you specified for the SourceArn "
                               "parameter doesn't exist.")
        limit = params.get("MaxResults", 1)
        if not 1 <= limit <= 10:
            raise invalid("Value for parameter MaxResults is invalid. Reason: Must be between 1 and 10.")
        rows = self.store.all(
            "SELECT task_id, source_arn, destination_arn, max_per_second, status, moved, to_move, started, failure "
            "FROM sqs_move_tasks WHERE source_arn=? ORDER BY started DESC LIMIT ?", (source.arn, limit))
        results = []
        for task_id, src, dst, rate, status, moved, to_move, started, failure in rows:
            entry: dict[str, Any] = {"Status": status, "SourceArn": src, "ApproximateNumberOfMessagesMoved": moved,
                                     "ApproximateNumberOfMessagesToMove": to_move,
                                     "StartedTimestamp": int(started * 1000)}
            if status == "RUNNING":
                entry["TaskHandle"] = base64.b64encode(json.dumps({"taskId": task_id, "sourceArn": src}).encode()).decode()
            if dst:
                entry["DestinationArn"] = dst
            if rate:
                entry["MaxNumberOfMessagesPerSecond"] = rate
            if failure:
                entry["FailureReason"] = failure
            results.append(entry)
        return {"Results": results}


def _task_id(handle: str) -> str:
    try:
        return json.loads(base64.b64decode(handle))["taskId"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise invalid("Value for parameter TaskHandle is invalid.") from None
