"""Kinesis Data Streams, over JSON and CBOR.

| module | what it holds |
|---|---|
| `service.py` | the operation handlers, shard iterators, throughput limits, SubscribeToShard's event stream, and the in-process contract other services read streams through |
| `streams.py` | the model: tables, stream and shard rows, sequence numbers, hash key ranges, record queries |
| `errors.py` | every error with AWS's wording |
| `resources.py` | `AWS::Kinesis::Stream`, `AWS::Kinesis::StreamConsumer` |

Not served: resource policies, account settings, warm throughput and record-size settings
(they answer 501).
"""

from unkai.services.kinesis.service import Kinesis

SERVICES = [Kinesis]
