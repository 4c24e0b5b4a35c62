"""SES identities, the account and configuration sets, through boto3's ses (v1) and
sesv2 clients: verification by the mailed link, domains verifying on unkai's clock, the
sandbox's quotas, and AWS's errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request

import pytest
from botocore.exceptions import ClientError

from tests.ses_support import code, fresh_region, message, verify


def test_an_address_stays_pending_until_the_link_in_its_verification_mail_is_followed(unkai):
    region = fresh_region()
    ses = unkai.client("ses", region)
    after = unkai.mail_seq()
    ses.verify_email_identity(EmailAddress="alice@example.com")
    attrs = ses.get_identity_verification_attributes(Identities=["alice@example.com"])["VerificationAttributes"]
    assert attrs["alice@example.com"]["VerificationStatus"] == "Pending"
    (mail,) = unkai.wait_for_mail(to="alice@example.com", after=after)
    assert mail["from"] == "Amazon Web Services <no-reply-aws@amazon.com>"
    assert mail["origin"] == "ses"
    assert "This link expires 24 hours after your original verification request." in mail["text"]
    verify(unkai, ses, "alice@example.com")  # a second request mails a second link; either works
    attrs = ses.get_identity_verification_attributes(Identities=["alice@example.com"])["VerificationAttributes"]
    assert attrs["alice@example.com"]["VerificationStatus"] == "Success"
    assert ses.list_verified_email_addresses()["VerifiedEmailAddresses"] == ["alice@example.com"]
    v2 = unkai.client("sesv2", region)
    got = v2.get_email_identity(EmailIdentity="alice@example.com")
    assert got["IdentityType"] == "EMAIL_ADDRESS" and got["VerifiedForSendingStatus"] is True
    assert got["VerificationStatus"] == "SUCCESS"


def test_a_domain_and_its_dkim_verify_on_unkais_clock(unkai):
    region = fresh_region()
    ses = unkai.client("ses", region)
    token = ses.verify_domain_identity(Domain="Example.ORG")["VerificationToken"]
    assert len(token) == 44
    dkim = ses.verify_domain_dkim(Domain="example.org")["DkimTokens"]
    assert len(dkim) == 3
    status = ses.get_identity_verification_attributes(Identities=["example.org"])["VerificationAttributes"]
    assert status["example.org"] == {"VerificationStatus": "Pending", "VerificationToken": token}
    unkai.advance(61)
    status = ses.get_identity_verification_attributes(Identities=["example.org"])["VerificationAttributes"]
    assert status["example.org"]["VerificationStatus"] == "Success"
    attrs = ses.get_identity_dkim_attributes(Identities=["example.org"])["DkimAttributes"]["example.org"]
    assert attrs == {"DkimEnabled": True, "DkimVerificationStatus": "Success", "DkimTokens": dkim}
    assert ses.list_identities(IdentityType="Domain")["Identities"] == ["example.org"]
    # any address of a verified domain may send
    ses.send_email(Source="news@example.org", Destination={"ToAddresses": ["success@simulator.amazonses.com"]},
                   Message={"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}})
    v2 = unkai.client("sesv2", region)
    got = v2.get_email_identity(EmailIdentity="example.org")
    assert got["DkimAttributes"]["Tokens"] == dkim and got["DkimAttributes"]["Status"] == "SUCCESS"
    ses.delete_identity(Identity="example.org")
    assert ses.list_identities()["Identities"] == []


def test_v2_identities_share_the_v1_account_and_answer_v2_errors(unkai):
    region = fresh_region()
    v2 = unkai.client("sesv2", region)
    ses = unkai.client("ses", region)
    created = v2.create_email_identity(EmailIdentity="shop.example", Tags=[{"Key": "team", "Value": "web"}])
    assert created["IdentityType"] == "DOMAIN" and created["VerifiedForSendingStatus"] is False
    assert len(created["DkimAttributes"]["Tokens"]) == 3
    with pytest.raises(ClientError) as exc:
        v2.create_email_identity(EmailIdentity="shop.example")
    assert code(exc) == "AlreadyExistsException"
    assert ses.list_identities()["Identities"] == ["shop.example"]
    listed = v2.list_email_identities()["EmailIdentities"]
    assert listed == [{"IdentityType": "DOMAIN", "IdentityName": "shop.example", "SendingEnabled": False,
                       "VerificationStatus": "PENDING"}]
    with pytest.raises(ClientError) as exc:
        v2.get_email_identity(EmailIdentity="nobody@shop.example")
    assert code(exc) == "NotFoundException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    v2.delete_email_identity(EmailIdentity="shop.example")
    with pytest.raises(ClientError) as exc:
        v2.delete_email_identity(EmailIdentity="shop.example")
    assert code(exc) == "NotFoundException"


@pytest.mark.parametrize("address, words", [
    ("no-at-sign", "Missing final '@domain'"),
    ("a b@example.com", "Local address contains control or whitespace"),
    ("a@exa_mple.com", "Domain contains illegal character"),
])
def test_a_malformed_address_is_invalid_parameter_value(unkai, address, words):
    ses = unkai.client("ses", "us-east-1")
    with pytest.raises(ClientError) as exc:
        ses.verify_email_identity(EmailAddress=address)
    assert code(exc) == "InvalidParameterValue" and message(exc) == words


def test_the_sandbox_quota_is_told_and_production_access_lifts_it(unkai):
    region = fresh_region()
    ses, v2 = unkai.client("ses", region), unkai.client("sesv2", region)
    quota = ses.get_send_quota()
    assert (quota["Max24HourSend"], quota["MaxSendRate"], quota["SentLast24Hours"]) == (200.0, 1.0, 0.0)
    verify(unkai, ses, "ops@example.com")
    unkai.advance(1.1)  # the sandbox sends 1 message per second
    ses.send_email(Source="ops@example.com", Destination={"ToAddresses": ["ops@example.com"]},
                   Message={"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}})
    assert ses.get_send_quota()["SentLast24Hours"] == 1.0
    stats = ses.get_send_statistics()["SendDataPoints"]
    assert sum(p["DeliveryAttempts"] for p in stats) == 1
    account = v2.get_account()
    assert account["ProductionAccessEnabled"] is False and account["SendQuota"]["SentLast24Hours"] == 1.0
    v2.put_account_details(MailType="TRANSACTIONAL", WebsiteURL="https://example.com",
                           UseCaseDescription="receipts", ProductionAccessEnabled=True)
    account = v2.get_account()
    assert account["ProductionAccessEnabled"] is True
    assert account["Details"]["ReviewDetails"]["Status"] == "GRANTED"
    assert account["SendQuota"]["Max24HourSend"] == 50000.0 and account["SendQuota"]["MaxSendRate"] == 14.0
    # the 24 hours pass on unkai's clock
    unkai.advance(86401)
    assert ses.get_send_quota()["SentLast24Hours"] == 0.0


def test_paused_account_sending_is_refused(unkai):
    region = fresh_region()
    ses, v2 = unkai.client("ses", region), unkai.client("sesv2", region)
    verify(unkai, ses, "p@example.com")
    unkai.advance(1.1)
    ses.update_account_sending_enabled(Enabled=False)
    assert ses.get_account_sending_enabled()["Enabled"] is False
    with pytest.raises(ClientError) as exc:
        ses.send_email(Source="p@example.com", Destination={"ToAddresses": ["p@example.com"]},
                       Message={"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}})
    assert code(exc) == "AccountSendingPausedException"
    with pytest.raises(ClientError) as exc:
        v2.send_email(FromEmailAddress="p@example.com", Destination={"ToAddresses": ["p@example.com"]},
                      Content={"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}})
    assert code(exc) == "SendingPausedException"
    v2.put_account_sending_attributes(SendingEnabled=True)
    assert ses.get_account_sending_enabled()["Enabled"] is True


def test_configuration_sets_and_event_destinations_in_both_apis(unkai):
    region = fresh_region()
    ses, v2 = unkai.client("ses", region), unkai.client("sesv2", region)
    ses.create_configuration_set(ConfigurationSet={"Name": "marketing"})
    with pytest.raises(ClientError) as exc:
        ses.create_configuration_set(ConfigurationSet={"Name": "marketing"})
    assert code(exc) == "ConfigurationSetAlreadyExists"
    topic = f"arn:aws:sns:{region}:000000000000:ses-events"
    ses.create_configuration_set_event_destination(ConfigurationSetName="marketing", EventDestination={
        "Name": "to-sns", "Enabled": True, "MatchingEventTypes": ["send", "bounce", "renderingFailure"],
        "SNSDestination": {"TopicARN": topic}})
    described = ses.describe_configuration_set(ConfigurationSetName="marketing",
                                               ConfigurationSetAttributeNames=["eventDestinations"])
    assert described["EventDestinations"] == [{"Name": "to-sns", "Enabled": True, "MatchingEventTypes": [
        "send", "bounce", "renderingFailure"], "SNSDestination": {"TopicARN": topic}}]
    got = v2.get_configuration_set_event_destinations(ConfigurationSetName="marketing")["EventDestinations"]
    assert got[0]["MatchingEventTypes"] == ["SEND", "BOUNCE", "RENDERING_FAILURE"]
    assert v2.list_configuration_sets()["ConfigurationSets"] == ["marketing"]
    with pytest.raises(ClientError) as exc:
        ses.describe_configuration_set(ConfigurationSetName="nope")
    assert code(exc) == "ConfigurationSetDoesNotExist"
    with pytest.raises(ClientError) as exc:
        v2.get_configuration_set(ConfigurationSetName="nope")
    assert code(exc) == "NotFoundException"
    ses.delete_configuration_set(ConfigurationSetName="marketing")
    assert ses.list_configuration_sets()["ConfigurationSets"] == []


def test_the_aws_cli_speaks_sesv2_to_the_same_account(unkai):
    region = fresh_region()
    env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": region,
           "PATH": os.environ["PATH"], "AWS_ENDPOINT_URL": unkai.endpoint}
    done = subprocess.run([sys.executable, "-m", "awscli", "sesv2", "create-email-identity", "--email-identity",
                           "cli.example", "--output", "json"], env=env, capture_output=True, text=True, timeout=60)
    if done.returncode != 0 and "No module named awscli" in done.stderr:
        pytest.skip("the AWS CLI is not installed")
    assert done.returncode == 0, done.stderr
    assert '"IdentityType": "DOMAIN"' in done.stdout
    assert unkai.client("ses", region).list_identities()["Identities"] == ["cli.example"]
    # v1 through the CLI too
    done = subprocess.run([sys.executable, "-m", "awscli", "ses", "verify-email-identity", "--email-address",
                           "cli@cli.example"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    unkai.wait_for_mail(to="cli@cli.example", subject="Email Address Verification Request")
    # and the legacy VerifyEmailAddress (boto3 still has it) mails the same verification link
    unkai.client("ses", region).verify_email_address(EmailAddress="legacy@cli.example")
    unkai.wait_for_mail(to="legacy@cli.example", subject="Email Address Verification Request")
    done = subprocess.run([sys.executable, "-m", "awscli", "ses", "list-identities", "--output", "json"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert sorted(json.loads(done.stdout)["Identities"]) == ["cli.example", "cli@cli.example", "legacy@cli.example"]


def test_a_used_or_bogus_verification_link_is_answered_with_a_page(unkai):
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(unkai.url("/_unkai/ses/verify?Context=bogus"), timeout=10)
    assert exc.value.code == 400


def test_unkai_up_ses_production_starts_out_of_the_sandbox_with_the_quotas_given(tmp_path):
    from unkai.testing import UnkaiServer

    server = UnkaiServer(tmp_path / "state", "--ses-production",
                         env={"UNKAI_SES_MAX_24H": "1000", "UNKAI_SES_MAX_RATE": "5"}).start()
    try:
        ses, v2 = server.client("ses"), server.client("sesv2")
        quota = ses.get_send_quota()
        assert (quota["Max24HourSend"], quota["MaxSendRate"]) == (1000.0, 5.0)
        assert v2.get_account()["ProductionAccessEnabled"] is True
        ses.verify_domain_identity(Domain="prod.example")
        server.advance(61)
        for i in range(3):  # unverified recipients, several in a second: production rules
            ses.send_email(Source="me@prod.example", Destination={"ToAddresses": [f"someone{i}@elsewhere.example"]},
                           Message={"Subject": {"Data": "live"}, "Body": {"Text": {"Data": "b"}}})
        assert ses.get_send_quota()["SentLast24Hours"] == 3.0
        assert server.mail("someone2@elsewhere.example")[0]["subject"] == "live"
    finally:
        server.stop()


def test_receipt_rule_sets_stop_at_awss_quota_with_limit_exceeded(unkai):
    ses = unkai.client("ses", fresh_region())
    for i in range(40):
        ses.create_receipt_rule_set(RuleSetName=f"set-{i}")
    with pytest.raises(ClientError) as exc:
        ses.create_receipt_rule_set(RuleSetName="one-too-many")
    assert code(exc) == "LimitExceeded"
    ses.delete_receipt_rule_set(RuleSetName="set-0")
    ses.create_receipt_rule_set(RuleSetName="one-too-many")
