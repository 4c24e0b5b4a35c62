"""AWS CloudFormation: the stacks the template engine deployed."""

from unkai.services.cloudformation.service import CloudFormation

SERVICES = [CloudFormation]
