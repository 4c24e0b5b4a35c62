"""AWS Secrets Manager (JSON protocol).

- ``service.py``: the operations: secrets, versions and staging labels, deletion with a
  recovery window on unkai's clock, resource policies, tags, GetRandomPassword,
  BatchGetSecretValue.
- ``secrets.py``: the records (``secretsmanager_secrets``, ``secretsmanager_versions``; values
  sealed with ``cloud.sealer``) and how a SecretId, VersionId and VersionStage select one.
- ``rotation.py``: rotation with a Lambda function, the four steps (createSecret, setSecret,
  testSecret, finishSecret) run as a durable job, and scheduled rotation on the clock.
- ``passwords.py``: GetRandomPassword and ``GenerateSecretString``.
- ``resources.py``: ``AWS::SecretsManager::Secret``, ``SecretTargetAttachment``,
  ``RotationSchedule``, ``ResourcePolicy``; ``secret_value`` for ``{{resolve:secretsmanager:...}}``.
- ``errors.py``: AWS's errors.

Not served: replication to other regions (accepted and reported, nothing copied),
managed external secrets.
"""

from unkai.services.secretsmanager.service import SecretsManager

SERVICES = [SecretsManager]
