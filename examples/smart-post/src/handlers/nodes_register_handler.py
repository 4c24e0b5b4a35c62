"""(4) Node registration, as the talk layers it: the handler knows the order of the
work (task started, sign-in check, registration, task finished, log) and none of it."""

import traceback

from domains.registry.nodes_register import NodeFactory, NodeRegisterService
from domains.signup.device_checker import SignIn
from domains.task.task_manager import TaskManager
from handlers import variables
from handlers.loggers import ErrorLogger, InfoLogger


def lambda_handler(event, context):
    param_hub_uuid = event.get("hub_uuid")
    try:
        task_uuid = event["task_uuid"]
        device_id = event["device_id"]
        code = event["code"]
        certificate_id = event["certificate_id"]
        nodes = NodeFactory.nodes_provider(param_hub_uuid, event.get("nodes"))
    except Exception as e:
        ErrorLogger(lambda_event=event, lambda_context=context, commit_id=variables.get_commit_id(),
                    param_hub_uuid=param_hub_uuid, error=e, traceback=traceback.format_exc()).log()
        raise e
    try:
        task_manager = TaskManager(task_uuid, param_hub_uuid)
        task_manager.start()
        signin = SignIn(device_id, code, param_hub_uuid, certificate_id)
        hub_uuid = signin.signin()
        service = NodeRegisterService(hub_uuid, variables.get_account_id(context), certificate_id, nodes)
        node_things = service.node_register()
        reason = "NodeRegisterFinished"
        task_manager.finish(reason)
        InfoLogger(node_things, event, context).log()
        return {"hub_uuid": hub_uuid, "nodes": [n.node_uuid for n in node_things.node_thing_list]}
    except Exception as e:
        ErrorLogger(lambda_event=event, lambda_context=context, commit_id=variables.get_commit_id(),
                    param_hub_uuid=param_hub_uuid, error=e, traceback=traceback.format_exc()).log()
        raise e
