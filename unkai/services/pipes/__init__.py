"""Amazon EventBridge Pipes: a source (SQS queue, DynamoDB stream, Kinesis stream) read by
unkai's one poller (``unkai/pollers``, the same as Lambda's event source mappings), filtered
by event patterns, optionally enriched by a Lambda function or an API destination, and handed to a target.

Modules: ``service.py`` (the API operations), ``model.py`` (the table, the ``Pipe`` row),
``runner.py`` (the pollers' consumer: enrichment, input templates, delivery),
``errors.py`` (AWS's errors), ``resources.py`` (``AWS::Pipes::Pipe``). Not served: the
Amazon MQ and Kafka sources, API Gateway enrichments, pipe logging
(accepted and stored)."""

from unkai.services.pipes.service import Pipes

SERVICES = [Pipes]
