"""A send reads its sender's identities and the account from memory (unkai/services/ses/
identities.py, ``Model``): every change to them must be seen by the very next send, a
change that rolls back must not be, and a reset must forget them."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.ses_support import code, fresh_region
from unkai.services.ses.identities import MIGRATIONS, Model
from unkai.store import Store

SIM = "success@simulator.amazonses.com"
MESSAGE = {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}


def send(ses, source: str = "shop@Example.ORG") -> str:
    return ses.send_email(Source=source, Destination={"ToAddresses": [SIM]}, Message=MESSAGE)["MessageId"]


def test_the_next_send_sees_each_change_to_the_identities_and_the_account(unkai):
    region = fresh_region()
    ses = unkai.client("ses", region)
    ses.verify_domain_identity(Domain="Example.ORG")  # domains are case-insensitive
    unkai.advance(61)
    send(ses)
    send(ses, "desk@example.org")
    ses.update_account_sending_enabled(Enabled=False)
    with pytest.raises(ClientError) as exc:
        send(ses)
    assert code(exc) == "AccountSendingPausedException"
    ses.update_account_sending_enabled(Enabled=True)
    send(ses)
    ses.set_identity_notification_topic(Identity="Example.ORG", NotificationType="Delivery",
                                        SnsTopic=f"arn:aws:sns:{region}:000000000000:nowhere")
    send(ses)  # the identity's new settings are read (a Delivery topic: the feedback goes through a job)
    ses.delete_identity(Identity="example.org")
    with pytest.raises(ClientError) as exc:
        send(ses)
    assert code(exc) == "MessageRejected"


def test_a_change_that_rolls_back_is_not_what_the_next_send_reads(tmp_path):
    store = Store(tmp_path / "unkai.db")
    store.migrate("ses", MIGRATIONS)
    model = Model(store)
    with store.transaction():
        model.add_identity("000000000000", "us-east-1", "shop.example", "Domain", 0.0)
        model.update_account("000000000000", "us-east-1", sending=False)
    with store.transaction():  # read (and kept) before the change
        assert model.own_and_domain("000000000000", "us-east-1", "a@shop.example")[1] is not None
        assert model.account("000000000000", "us-east-1").sending is False
    with pytest.raises(RuntimeError):
        with store.transaction():
            model.delete_identity("000000000000", "us-east-1", "shop.example")
            model.update_account("000000000000", "us-east-1", sending=True)
            # the transaction reads its own change
            assert model.own_and_domain("000000000000", "us-east-1", "a@shop.example") == (None, None)
            assert model.account("000000000000", "us-east-1").sending is True
            raise RuntimeError("the request failed")
    with store.transaction():
        assert model.own_and_domain("000000000000", "us-east-1", "a@shop.example")[1].identity == "shop.example"
        assert model.account("000000000000", "us-east-1").sending is False
    with store.transaction():
        with pytest.raises(RuntimeError):
            with store.transaction():  # a savepoint that rolls back
                model.delete_identity("000000000000", "us-east-1", "shop.example")
                raise RuntimeError("one entry failed")
        assert model.own_and_domain("000000000000", "us-east-1", "a@shop.example")[1] is not None
    with store.transaction():
        model.delete_identity("000000000000", "us-east-1", "shop.example")
    assert model.own_and_domain("000000000000", "us-east-1", "a@shop.example") == (None, None)


def test_a_reset_forgets_the_identities_a_send_read(unkai_clean):
    ses = unkai_clean.client("ses", "us-east-1")
    ses.verify_domain_identity(Domain="reset.example")
    unkai_clean.advance(61)
    send(ses, "a@reset.example")
    unkai_clean.reset()
    with pytest.raises(ClientError) as exc:
        send(ses, "a@reset.example")
    assert code(exc) == "MessageRejected"
