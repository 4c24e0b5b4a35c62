"""Amazon SNS."""

from unkai.services.sns.service import SNS

SERVICES = [SNS]
