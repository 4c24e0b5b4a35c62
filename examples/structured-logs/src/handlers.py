"""Node registration, the talk's example flow: each node of a hub is registered, the
outcome is logged with ``InfoLogger``, and a failure is logged with ``ErrorLogger`` and
re-raised (so Lambda counts an error and the alarm sees it)."""

import traceback
import uuid

import logger
import variables


class NodeThings:
    """The nodes a request registers (a stand-in for the talk's IoT Thing registry calls)."""

    def __init__(self, task_uuid: str, device_id: str, hub_uuid: str, nodes: list) -> None:
        self.task_uuid = task_uuid
        self.device_id = device_id
        self.param_hub_uuid = hub_uuid
        self.nodes = nodes
        self.log_event = "NodeRegisterStarted"

    def register(self) -> None:
        for node in self.nodes:
            if not str(node).startswith("node-"):
                raise ValueError(f"invalid node id: {node}")
        self.log_event = "NodeRegisterFinished"


def nodes_register_handler(event, context):
    logger.bind(context)
    task_uuid = event.get("task_uuid") or str(uuid.uuid4())
    hub_uuid = event.get("hub_uuid")
    try:
        things = NodeThings(task_uuid, event["device_id"], hub_uuid, event.get("nodes") or [])
        logger.InfoLogger(things).log()
        things.register()
        logger.InfoLogger(things).log()
        return {"task_uuid": task_uuid, "registered": len(things.nodes)}
    except Exception as e:
        logger.ErrorLogger(dict(event, task_uuid=task_uuid), context, variables.get_commit_id(), hub_uuid, e,
                           traceback.format_exc()).log()
        raise e
