"""Amazon SQS."""

from unkai.services.sqs.service import SQS

SERVICES = [SQS]
