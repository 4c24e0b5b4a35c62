"""Just-in-time registration: a new certificate of the maker's CA is activated and given
the hub policy."""

import infrastructures.registry.certificate_repository as repository


class CertificateActivation:
    def __init__(self, certificate_id, ca_certificate_id, policy_name):
        self.certificate_id = certificate_id
        self.ca_certificate_id = ca_certificate_id
        self.policy_name = policy_name

    def activate(self):
        # the policy first: a hub that sees its certificate ACTIVE may connect at once
        repository.attach_policy(self.policy_name, self.certificate_id)
        repository.activate(self.certificate_id)

    def log_fields(self):
        return {"log_event": "CertificateActivated", "certificate_id": self.certificate_id,
                "ca_certificate_id": self.ca_certificate_id}
