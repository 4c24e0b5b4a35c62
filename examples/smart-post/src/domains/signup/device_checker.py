"""Who is asking: a hub proves itself with the device id and registration code it was
pre-registered with (and, once registered, its hub uuid and certificate)."""

import infrastructures.device.device_repository as repository


class SignInFailed(Exception):
    pass


class SignIn:
    def __init__(self, device_id, code, hub_uuid=None, certificate_id=None):
        self.device_id = device_id
        self.code = code
        self.hub_uuid = hub_uuid
        self.certificate_id = certificate_id

    def _device(self):
        device = repository.get(self.device_id)
        if device is None or device.get("registration_code") != self.code:
            raise SignInFailed(f"device {self.device_id} is not pre-registered with this code")
        return device

    def check_unregistered(self):
        """Hub registration: the device is pre-registered and not a hub yet."""
        if self._device().get("hub_uuid"):
            raise SignInFailed(f"device {self.device_id} is already registered")

    def signin(self):
        """Node registration: the registered hub with this certificate; its hub uuid."""
        device = self._device()
        if device.get("hub_uuid") != self.hub_uuid or device.get("certificate_id") != self.certificate_id:
            raise SignInFailed(f"device {self.device_id} is not the hub {self.hub_uuid} of this certificate")
        return device["hub_uuid"]
