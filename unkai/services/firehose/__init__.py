"""Amazon Data Firehose: delivery streams (Direct PUT or a Kinesis stream) to S3.

| module | what it holds |
|---|---|
| `service.py` | the operation handlers, the durable buffer's flush jobs, the Kinesis source readers |
| `delivery.py` | a flush's work: processors (Lambda, JQ, delimiters, CloudWatch Logs), dynamic partitioning, prefixes, object names, compression, error output, backup |
| `streams.py` | the model: delivery streams and their buffered records |
| `errors.py` | every error with AWS's wording |
| `resources.py` | `AWS::KinesisFirehose::DeliveryStream` |

Only S3 destinations are served; others (Redshift, OpenSearch, Splunk, HTTP endpoints,
Snowflake, Iceberg) answer 501, as do MSK and database sources.
"""

from unkai.services.firehose.service import Firehose

SERVICES = [Firehose]
