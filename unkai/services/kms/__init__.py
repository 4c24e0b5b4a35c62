"""AWS KMS (JSON protocol) with real cryptography.

- ``service.py``: the operations: keys, aliases, key policies, grants, rotation, deletion on
  unkai's clock, Encrypt/Decrypt/ReEncrypt/GenerateDataKey(WithoutPlaintext)/GenerateRandom,
  Sign/Verify/GetPublicKey, GenerateMac/VerifyMac; ``AWS::KMS::Key`` and ``AWS::KMS::Alias``.
- ``keys.py``: the records (``kms_keys`` with sealed material, ``kms_aliases``) and AWS managed
  keys (``alias/aws/<service>``) created on first use.
- ``crypto.py``: key material and the ciphertext, signature and MAC formats (``cryptography``).

Not served: custom key stores, imported key material (EXTERNAL keys stay PendingImport),
multi-Region replicas, key agreement (DeriveSharedSecret), data key pairs.
"""

from unkai.services.kms.service import KMS

SERVICES = [KMS]
