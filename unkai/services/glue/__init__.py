"""AWS Glue Data Catalog: databases, tables and partitions, which Athena queries read.

- ``service.py``: the catalog operations.
- ``catalog.py``: rows and the in-process contract Athena uses (``table``, ``partitions``).
- ``resources.py``: ``AWS::Glue::Database``, ``AWS::Glue::Table``, ``AWS::Glue::Partition``.

Not served: crawlers, jobs, triggers, workflows, connections, the schema registry, data
quality, table versions' history, column statistics.
"""

from unkai.services.glue.service import Glue

SERVICES = [Glue]
