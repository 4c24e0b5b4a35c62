"""KMS through boto3: symmetric encryption whose ciphertext only the key opens (and only
with its encryption context), data keys, rotation, aliases, deletion on unkai's clock,
RSA and ECC signatures, RSA encryption, HMACs, key policies and grants."""

from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from lambda_code import private_server

# key deletion and rotation move the clock by days: a server of the module's own
unkai = private_server("kms")


@pytest.fixture
def kms(unkai):
    return unkai.client("kms")


def _code(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Code"]


def test_symmetric_encryption_is_authenticated_and_bound_to_its_context(kms):
    key = kms.create_key(Description="orders")["KeyMetadata"]
    assert (key["KeySpec"], key["KeyUsage"], key["KeyState"]) == ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", "Enabled")
    alias = f"alias/orders-{uuid.uuid4().hex[:6]}"
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    out = kms.encrypt(KeyId=alias, Plaintext=b"card 4111", EncryptionContext={"order": "42"})
    assert out["KeyId"] == key["Arn"] and b"card 4111" not in out["CiphertextBlob"]
    back = kms.decrypt(CiphertextBlob=out["CiphertextBlob"], EncryptionContext={"order": "42"})
    assert (back["Plaintext"], back["KeyId"]) == (b"card 4111", key["Arn"])
    for context in ({"order": "43"}, {}):
        with pytest.raises(ClientError) as exc:
            kms.decrypt(CiphertextBlob=out["CiphertextBlob"], EncryptionContext=context)
        assert _code(exc) == "InvalidCiphertextException"
    tampered = bytearray(out["CiphertextBlob"])
    tampered[-1] ^= 1
    with pytest.raises(ClientError) as exc:
        kms.decrypt(CiphertextBlob=bytes(tampered), EncryptionContext={"order": "42"})
    assert _code(exc) == "InvalidCiphertextException"
    other = kms.create_key()["KeyMetadata"]
    with pytest.raises(ClientError) as exc:
        kms.decrypt(CiphertextBlob=out["CiphertextBlob"], KeyId=other["KeyId"], EncryptionContext={"order": "42"})
    assert _code(exc) == "IncorrectKeyException"
    moved = kms.re_encrypt(CiphertextBlob=out["CiphertextBlob"], SourceEncryptionContext={"order": "42"},
                           DestinationKeyId=other["Arn"])
    assert kms.decrypt(CiphertextBlob=moved["CiphertextBlob"])["Plaintext"] == b"card 4111"
    data_key = kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256")
    assert len(data_key["Plaintext"]) == 32
    assert kms.decrypt(CiphertextBlob=data_key["CiphertextBlob"])["Plaintext"] == data_key["Plaintext"]
    assert "Plaintext" not in kms.generate_data_key_without_plaintext(KeyId=key["KeyId"], NumberOfBytes=16)
    assert len(kms.generate_random(NumberOfBytes=64)["Plaintext"]) == 64
    kms.rotate_key_on_demand(KeyId=key["KeyId"])
    assert kms.decrypt(CiphertextBlob=out["CiphertextBlob"], EncryptionContext={"order": "42"})["Plaintext"] == \
        b"card 4111"  # older material still opens what it sealed
    fresh = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"after rotation")["CiphertextBlob"]
    assert fresh[17:21] == b"\x00\x00\x00\x01"  # unkai's blob names the material: the rotated one seals now
    assert kms.decrypt(CiphertextBlob=fresh)["Plaintext"] == b"after rotation"
    assert len(kms.list_key_rotations(KeyId=key["KeyId"])["Rotations"]) == 1


def test_disabled_and_deleted_keys_follow_the_clock(unkai, kms):
    key = kms.create_key()["KeyMetadata"]
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"  # the key's material has been opened once
    kms.disable_key(KeyId=key["KeyId"])
    with pytest.raises(ClientError) as exc:
        kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    assert exc.value.response["Error"] == {"Code": "DisabledException", "Message": f"{key['Arn']} is disabled."}
    with pytest.raises(ClientError) as exc:  # and the key's state is still asked on every call
        kms.decrypt(CiphertextBlob=blob)
    assert exc.value.response["Error"] == {"Code": "DisabledException", "Message": f"{key['Arn']} is disabled."}
    kms.enable_key(KeyId=key["KeyId"])
    scheduled = kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    assert scheduled["KeyState"] == "PendingDeletion"
    with pytest.raises(ClientError) as exc:
        kms.decrypt(CiphertextBlob=blob)
    assert _code(exc) == "KMSInvalidStateException"
    kms.cancel_key_deletion(KeyId=key["KeyId"])
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "Disabled"
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    unkai.advance(7 * 86400 + 1)
    with pytest.raises(ClientError) as exc:
        kms.describe_key(KeyId=key["KeyId"])
    assert _code(exc) == "NotFoundException"
    with pytest.raises(ClientError) as exc:
        kms.decrypt(CiphertextBlob=blob)
    assert _code(exc) == "InvalidCiphertextException"


def test_describe_key_follows_every_change_of_the_key(kms):
    key = kms.create_key(Description="first")["KeyMetadata"]

    def described() -> dict:
        return kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]

    assert described()["Description"] == "first"  # read (and kept) once before every change below
    kms.update_key_description(KeyId=key["KeyId"], Description="second")
    assert described()["Description"] == "second"
    kms.disable_key(KeyId=key["KeyId"])
    assert (described()["KeyState"], described()["Enabled"]) == ("Disabled", False)
    with pytest.raises(ClientError):  # a refused change leaves the key as it was
        kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=3)
    with pytest.raises(ClientError):
        kms.revoke_grant(KeyId=key["KeyId"], GrantId="0" * 64)
    assert (described()["KeyState"], described()["Description"]) == ("Disabled", "second")
    kms.enable_key(KeyId=key["KeyId"])
    assert (described()["KeyState"], described()["Enabled"]) == ("Enabled", True)
    scheduled = kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    assert described()["DeletionDate"] == scheduled["DeletionDate"]
    kms.cancel_key_deletion(KeyId=key["KeyId"])
    assert "DeletionDate" not in described() and described()["KeyState"] == "Disabled"


def test_rotation_on_the_clock(unkai, kms):
    key = kms.create_key()["KeyMetadata"]
    kms.enable_key_rotation(KeyId=key["KeyId"], RotationPeriodInDays=90)
    status = kms.get_key_rotation_status(KeyId=key["KeyId"])
    assert status["KeyRotationEnabled"] and status["RotationPeriodInDays"] == 90
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"before")["CiphertextBlob"]
    unkai.advance(90 * 86400 + 1)
    assert kms.list_key_rotations(KeyId=key["KeyId"])["Rotations"][0]["RotationType"] == "AUTOMATIC"
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"before"


def test_asymmetric_signatures_verify_with_the_public_key(kms):
    ecc = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    assert ecc["SigningAlgorithms"] == ["ECDSA_SHA_256"]
    signature = kms.sign(KeyId=ecc["KeyId"], Message=b"release 1.0", SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    public = serialization.load_der_public_key(kms.get_public_key(KeyId=ecc["KeyId"])["PublicKey"])
    public.verify(signature, b"release 1.0", ec.ECDSA(hashes.SHA256()))  # raises if it does not hold
    assert kms.verify(KeyId=ecc["KeyId"], Message=b"release 1.0", Signature=signature,
                      SigningAlgorithm="ECDSA_SHA_256")["SignatureValid"]
    with pytest.raises(ClientError) as exc:
        kms.verify(KeyId=ecc["KeyId"], Message=b"release 2.0", Signature=signature, SigningAlgorithm="ECDSA_SHA_256")
    assert _code(exc) == "KMSInvalidSignatureException"
    rsa = kms.create_key(KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]
    rsa_public = serialization.load_der_public_key(kms.get_public_key(KeyId=rsa["KeyId"])["PublicKey"])
    blob = rsa_public.encrypt(b"wrapped", padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(),
                                                       label=None))
    assert kms.decrypt(CiphertextBlob=blob, KeyId=rsa["KeyId"],
                       EncryptionAlgorithm="RSAES_OAEP_SHA_256")["Plaintext"] == b"wrapped"
    with pytest.raises(ClientError) as exc:
        kms.sign(KeyId=rsa["KeyId"], Message=b"x", SigningAlgorithm="RSASSA_PSS_SHA_256")
    assert _code(exc) == "InvalidKeyUsageException"
    mac_key = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]
    mac = kms.generate_mac(KeyId=mac_key["KeyId"], Message=b"m", MacAlgorithm="HMAC_SHA_256")["Mac"]
    assert kms.verify_mac(KeyId=mac_key["KeyId"], Message=b"m", Mac=mac, MacAlgorithm="HMAC_SHA_256")["MacValid"]


def test_policies_grants_aliases_and_errors(kms, unkai):
    key = kms.create_key()["KeyMetadata"]
    policy = json.loads(kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"])
    assert policy["Statement"][0]["Principal"] == {"AWS": "arn:aws:iam::000000000000:root"}
    with pytest.raises(ClientError) as exc:
        kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy='{"Statement": [{"Effect": "Allow"}]}')
    assert _code(exc) == "MalformedPolicyDocumentException"
    grant = kms.create_grant(KeyId=key["KeyId"], GranteePrincipal="arn:aws:iam::000000000000:role/app",
                             Operations=["Decrypt"])
    assert [g["GrantId"] for g in kms.list_grants(KeyId=key["KeyId"])["Grants"]] == [grant["GrantId"]]
    kms.revoke_grant(KeyId=key["KeyId"], GrantId=grant["GrantId"])
    assert kms.list_grants(KeyId=key["KeyId"])["Grants"] == []
    with pytest.raises(ClientError) as exc:
        kms.describe_key(KeyId="alias/does-not-exist")
    assert exc.value.response["Error"]["Message"] == \
        "Alias arn:aws:kms:us-east-1:000000000000:alias/does-not-exist is not found."
    missing = str(uuid.uuid4())
    with pytest.raises(ClientError) as exc:
        kms.encrypt(KeyId=missing, Plaintext=b"x")
    assert exc.value.response["Error"]["Message"] == \
        f"Key 'arn:aws:kms:us-east-1:000000000000:key/{missing}' does not exist"
    managed = kms.describe_key(KeyId="alias/aws/secretsmanager")["KeyMetadata"]
    assert managed["KeyManager"] == "AWS"
    with pytest.raises(ClientError) as exc:
        kms.decrypt(CiphertextBlob=b"not a ciphertext blob at all, clearly not")
    assert _code(exc) == "InvalidCiphertextException"
