"""AWS Systems Manager Parameter Store."""

from unkai.services.ssm.service import SSM

SERVICES = [SSM]
