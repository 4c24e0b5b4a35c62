"""Hub registration: the hub becomes a Thing (named by a new hub uuid) in a ThingGroup of
its own, its certificate is attached, and the HUB-Device table remembers both."""

import uuid

import infrastructures.device.device_repository as device_repository
import infrastructures.registry.thing_repository as thing_repository


def get_group_name(hub_uuid):
    return f"hub-{hub_uuid}"


class Hub:
    def __init__(self, hub_uuid, device_id, certificate_id):
        self.hub_uuid = hub_uuid
        self.device_id = device_id
        self.certificate_id = certificate_id
        self.group_name = get_group_name(hub_uuid)

    def log_fields(self):
        return {"log_event": "HubRegisterFinished", "param_hub_uuid": self.hub_uuid,
                "thing_group_name": self.group_name}


class HubRegisterService:
    def __init__(self, device_id, certificate_id):
        self.device_id = device_id
        self.certificate_id = certificate_id

    def hub_register(self):
        hub = Hub(str(uuid.uuid4()), self.device_id, self.certificate_id)
        thing_repository.create_hub(hub)
        thing_repository.create_group(hub.group_name)
        thing_repository.add_to_group(hub.group_name, hub.hub_uuid)
        thing_repository.attach_certificate(hub.hub_uuid, self.certificate_id)
        device_repository.register_hub(self.device_id, hub.hub_uuid, self.certificate_id)
        return hub
