"""(2) Just-in-time registration: AWS IoT registered a hub's certificate (signed by the
maker's CA) as PENDING_ACTIVATION when the hub first connected, and published
$aws/events/certificates/registered/{caCertificateId}; this activates it and gives it the
hub policy, so the hub's next connection succeeds."""

import os
import traceback

from domains.registry.jit import CertificateActivation
from handlers import variables
from handlers.loggers import ErrorLogger, InfoLogger


def lambda_handler(event, context):
    try:
        activation = CertificateActivation(event["certificateId"], event["caCertificateId"],
                                           os.environ["HUB_POLICY_NAME"])
        activation.activate()
        InfoLogger(activation, event, context).log()
    except Exception as e:
        ErrorLogger(lambda_event=event, lambda_context=context, commit_id=variables.get_commit_id(),
                    param_hub_uuid=None, error=e, traceback=traceback.format_exc()).log()
        raise e
