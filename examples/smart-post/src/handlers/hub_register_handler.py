"""(3) Hub registration: the mobile client sends the hub's device id, its registration
code and the certificate it connected with; the hub becomes a Thing in its own ThingGroup."""

import traceback

from domains.registry.hub_register import HubRegisterService
from domains.signup.device_checker import SignIn
from domains.task.task_manager import TaskManager
from handlers import variables
from handlers.loggers import ErrorLogger, InfoLogger


def lambda_handler(event, context):
    try:
        task_uuid = event["task_uuid"]
        device_id = event["device_id"]
        code = event["code"]
        certificate_id = event["certificate_id"]
    except KeyError as e:
        ErrorLogger(lambda_event=event, lambda_context=context, commit_id=variables.get_commit_id(),
                    param_hub_uuid=None, error=e, traceback=traceback.format_exc()).log()
        raise ValueError(f"missing parameter {e}") from None
    try:
        task_manager = TaskManager(task_uuid, device_id)
        task_manager.start()
        SignIn(device_id, code).check_unregistered()
        service = HubRegisterService(device_id, certificate_id)
        hub = service.hub_register()
        task_manager.finish("HubRegisterFinished")
        InfoLogger(hub, event, context).log()
        return {"hub_uuid": hub.hub_uuid, "thing_group_name": hub.group_name}
    except Exception as e:
        ErrorLogger(lambda_event=event, lambda_context=context, commit_id=variables.get_commit_id(),
                    param_hub_uuid=None, error=e, traceback=traceback.format_exc()).log()
        raise e
