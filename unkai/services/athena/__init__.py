"""Amazon Athena, with DuckDB as the engine and the Glue Data Catalog as the metastore.

- ``service.py``: the operations (query executions, results, workgroups, named queries,
  the catalog's databases and tables as Athena lists them).
- ``executions.py``: the rows of executions, workgroups and named queries.
- ``engine.py``: planning a query over Glue tables and S3 objects, running it in DuckDB,
  Athena's result types, text values and CSV.
- ``sql.py``: Athena's (Trino's) SQL spelled for DuckDB.
- ``statements.py``: what is answered from the catalog (SHOW, DESCRIBE, MSCK REPAIR,
  ALTER TABLE ADD PARTITION, CREATE EXTERNAL TABLE, CREATE DATABASE, DROP TABLE).
- ``ddl.py``: parsing Hive's DDL, CTAS and INSERT INTO.
- ``writes.py``: CTAS and INSERT INTO, whose rows become files in S3 and rows in Glue.
- ``resources.py``: ``AWS::Athena::WorkGroup`` and ``AWS::Athena::NamedQuery``.

Not served: Spark notebooks, sessions and calculations, capacity reservations, prepared
statements, data catalogs other than AwsDataCatalog, UNLOAD, views, INSERT OVERWRITE.
"""

from unkai.services.athena.service import Athena

SERVICES = [Athena]
