"""SES v2 list management and engagement tracking, from a reader's seat: contact lists
with topics and contacts' preferences; a send for a list carries List-Unsubscribe headers
and an unsubscribe link that opts the reader out (a Subscription event), after which
mail for that topic is not delivered to them (a bounce event); with Open and Click
destinations, the HTML gets a pixel and tracked links that report Open and Click events
and redirect to the original link."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.ses_support import code, fresh_region, verify
from unkai.testing import new_queue, receive_all


@pytest.fixture(scope="module")
def region(unkai):
    region = fresh_region()
    v2 = unkai.client("sesv2", region)
    v2.put_account_details(MailType="MARKETING", WebsiteURL="https://shop.example", ProductionAccessEnabled=True,
                           UseCaseDescription="newsletters")
    verify(unkai, unkai.client("ses", region), "news@shop.example")
    return region


@pytest.fixture(scope="module")
def events(unkai, region):
    """A configuration set whose every event lands, as JSON, in one queue."""
    v2, sns, sqs = unkai.client("sesv2", region), unkai.client("sns", region), unkai.client("sqs", region)
    topic = sns.create_topic(Name="engagement")["TopicArn"]
    url, arn = new_queue(sqs)
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    v2.create_configuration_set(ConfigurationSetName="engaged")
    v2.create_configuration_set_event_destination(
        ConfigurationSetName="engaged", EventDestinationName="all",
        EventDestination={"Enabled": True, "SnsDestination": {"TopicArn": topic}, "MatchingEventTypes": [
            "OPEN", "CLICK", "SUBSCRIPTION", "BOUNCE"]})

    def read() -> list[dict]:
        unkai.drain()
        return [json.loads(b) for b in receive_all(sqs, url)]

    read()
    return read


def test_contact_lists_topics_and_contacts_answer_as_sesv2_does(unkai, region):
    v2 = unkai.client("sesv2", region)
    v2.create_contact_list(ContactListName="customers", Description="everyone who bought", Topics=[
        {"TopicName": "offers", "DisplayName": "Offers", "DefaultSubscriptionStatus": "OPT_IN"},
        {"TopicName": "digest", "DisplayName": "Weekly digest", "DefaultSubscriptionStatus": "OPT_OUT"}])
    with pytest.raises(ClientError) as exc:
        v2.create_contact_list(ContactListName="customers")
    assert code(exc) == "AlreadyExistsException"
    with pytest.raises(ClientError) as exc:
        v2.create_contact_list(ContactListName="second")  # one list per account, as on AWS
    assert code(exc) == "LimitExceededException"
    got = v2.get_contact_list(ContactListName="customers")
    assert [t["TopicName"] for t in got["Topics"]] == ["offers", "digest"] and got["Description"] == \
        "everyone who bought"
    assert [c["ContactListName"] for c in v2.list_contact_lists()["ContactLists"]] == ["customers"]

    v2.create_contact(ContactListName="customers", EmailAddress="ann@example.com", AttributesData='{"tier": "gold"}',
                      TopicPreferences=[{"TopicName": "digest", "SubscriptionStatus": "OPT_IN"}])
    v2.create_contact(ContactListName="customers", EmailAddress="bob@example.com")
    v2.create_contact(ContactListName="customers", EmailAddress="cy@example.com", UnsubscribeAll=True)
    with pytest.raises(ClientError) as exc:
        v2.create_contact(ContactListName="customers", EmailAddress="ann@example.com")
    assert code(exc) == "AlreadyExistsException"
    with pytest.raises(ClientError) as exc:
        v2.create_contact(ContactListName="customers", EmailAddress="dee@example.com",
                          TopicPreferences=[{"TopicName": "nope", "SubscriptionStatus": "OPT_IN"}])
    assert code(exc) == "BadRequestException"
    with pytest.raises(ClientError) as exc:
        v2.create_contact(ContactListName="missing", EmailAddress="dee@example.com")
    assert code(exc) == "NotFoundException"
    ann = v2.get_contact(ContactListName="customers", EmailAddress="ann@example.com")
    assert ann["TopicPreferences"] == [{"TopicName": "digest", "SubscriptionStatus": "OPT_IN"}]
    assert ann["TopicDefaultPreferences"] == [{"TopicName": "offers", "SubscriptionStatus": "OPT_IN"}]
    assert ann["AttributesData"] == '{"tier": "gold"}' and ann["UnsubscribeAll"] is False

    def listed(**flt) -> list[str]:
        return [c["EmailAddress"] for c in v2.list_contacts(ContactListName="customers", Filter=flt)["Contacts"]]

    assert listed() == ["ann@example.com", "bob@example.com", "cy@example.com"]
    digest = {"TopicName": "digest", "UseDefaultIfPreferenceUnavailable": True}
    assert listed(FilteredStatus="OPT_IN", TopicFilter=digest) == ["ann@example.com"]
    assert listed(FilteredStatus="OPT_OUT", TopicFilter=digest) == ["bob@example.com", "cy@example.com"]
    assert listed(FilteredStatus="OPT_IN", TopicFilter={"TopicName": "digest"}) == ["ann@example.com"]
    assert listed(FilteredStatus="OPT_OUT") == ["cy@example.com"]
    page = v2.list_contacts(ContactListName="customers", PageSize=2)
    assert len(page["Contacts"]) == 2 and page["NextToken"]

    v2.update_contact(ContactListName="customers", EmailAddress="bob@example.com",
                      TopicPreferences=[{"TopicName": "offers", "SubscriptionStatus": "OPT_OUT"}])
    assert v2.get_contact(ContactListName="customers", EmailAddress="bob@example.com")["TopicPreferences"] == [
        {"TopicName": "offers", "SubscriptionStatus": "OPT_OUT"}]
    v2.update_contact_list(ContactListName="customers", Topics=got["Topics"] + [
        {"TopicName": "events", "DisplayName": "Events", "DefaultSubscriptionStatus": "OPT_IN"}])
    assert len(v2.get_contact_list(ContactListName="customers")["Topics"]) == 3
    v2.delete_contact(ContactListName="customers", EmailAddress="cy@example.com")
    with pytest.raises(ClientError) as exc:
        v2.get_contact(ContactListName="customers", EmailAddress="cy@example.com")
    assert code(exc) == "NotFoundException"


def test_a_list_send_carries_an_unsubscribe_link_that_opts_the_reader_out(unkai, region, events):
    v2 = unkai.client("sesv2", region)
    after = unkai.mail_seq()
    mid = v2.send_email(
        FromEmailAddress="news@shop.example", Destination={"ToAddresses": ["eve@example.com"]},
        ConfigurationSetName="engaged", ListManagementOptions={"ContactListName": "customers", "TopicName": "offers"},
        Content={"Simple": {"Subject": {"Data": "Spring offers"}, "Body": {
            "Text": {"Data": "Offers inside. Unsubscribe: {{amazonSESUnsubscribeUrl}}"},
            "Html": {"Data": "<p>Offers</p><a href='{{amazonSESUnsubscribeUrl}}'>unsubscribe</a>"}}}})["MessageId"]
    (mail,) = unkai.wait_for_mail(to="eve@example.com", subject="Spring offers", after=after)
    headers = {k.lower(): v for k, v in unkai.mail_message(mail["id"])["headers"]}
    link = headers["list-unsubscribe"].strip("<>")
    assert link.startswith(unkai.endpoint) and headers["list-unsubscribe-post"] == "List-Unsubscribe=One-Click"
    assert f"Unsubscribe: {link}" in mail["text"] and "{{amazonSESUnsubscribeUrl}}" not in mail["html"]
    page = httpx.get(link, timeout=10)  # looking does not unsubscribe (link scanners fetch too)
    assert page.status_code == 200 and "eve@example.com" in page.text and "offers" in page.text
    with pytest.raises(ClientError):
        v2.get_contact(ContactListName="customers", EmailAddress="eve@example.com")
    one_click = httpx.post(link, content=b"List-Unsubscribe=One-Click", timeout=10,
                           headers={"content-type": "application/x-www-form-urlencoded"})
    assert one_click.status_code == 200
    eve = v2.get_contact(ContactListName="customers", EmailAddress="eve@example.com")
    assert eve["TopicPreferences"] == [{"TopicName": "offers", "SubscriptionStatus": "OPT_OUT"}]
    (sub,) = [e for e in events() if e["eventType"] == "Subscription"]
    assert sub["mail"]["messageId"] == mid and sub["subscription"]["contactList"] == "customers"
    assert sub["subscription"]["source"] == "UnsubscribeHeader"
    assert sub["subscription"]["newTopicPreferences"]["topicSubscriptionStatus"] == [
        {"topicName": "offers", "subscriptionStatus": "OptOut"}]
    assert sub["subscription"]["oldTopicPreferences"]["topicSubscriptionStatus"] == []

    # the next offer is not delivered to her, and is reported; other topics still reach her
    after = unkai.mail_seq()
    unkai.advance(1.1)
    v2.send_email(FromEmailAddress="news@shop.example", Destination={"ToAddresses": ["eve@example.com"]},
                  ConfigurationSetName="engaged",
                  ListManagementOptions={"ContactListName": "customers", "TopicName": "offers"},
                  Content={"Simple": {"Subject": {"Data": "More offers"}, "Body": {"Text": {"Data": "x"}}}})
    unkai.advance(1.1)
    v2.send_email(FromEmailAddress="news@shop.example", Destination={"ToAddresses": ["eve@example.com"]},
                  ListManagementOptions={"ContactListName": "customers", "TopicName": "events"},
                  Content={"Simple": {"Subject": {"Data": "Events"}, "Body": {"Text": {"Data": "x"}}}})
    unkai.wait_for_mail(to="eve@example.com", subject="Events", after=after)
    assert [m["subject"] for m in unkai.mail("eve@example.com") if m["seq"] > after] == ["Events"]
    (bounce,) = [e for e in events() if e["eventType"] == "Bounce"]
    assert bounce["bounce"]["bounceSubType"] == "UnsubscribedRecipient"
    assert bounce["bounce"]["bouncedRecipients"][0]["emailAddress"] == "eve@example.com"
    # the digest is opt-in: an address that is no contact does not get it
    unkai.advance(1.1)
    v2.send_email(FromEmailAddress="news@shop.example", Destination={"ToAddresses": ["fay@example.com"]},
                  ListManagementOptions={"ContactListName": "customers", "TopicName": "digest"},
                  Content={"Simple": {"Subject": {"Data": "Digest"}, "Body": {"Text": {"Data": "x"}}}})
    unkai.drain()
    assert unkai.mail("fay@example.com") == []
    with pytest.raises(ClientError) as exc:
        v2.send_email(FromEmailAddress="news@shop.example", Destination={"ToAddresses": ["fay@example.com"]},
                      ListManagementOptions={"ContactListName": "nope"},
                      Content={"Simple": {"Subject": {"Data": "x"}, "Body": {"Text": {"Data": "x"}}}})
    assert code(exc) == "NotFoundException"


def test_opens_and_clicks_are_tracked_and_links_still_lead_where_they_did(unkai, region, events):
    v2 = unkai.client("sesv2", region)
    unkai.advance(1.1)
    after = unkai.mail_seq()
    html = ("<html><body><p>New in store</p>"
            "<a href=\"https://shop.example/tea?id=1&amp;c=2\" ses:tags=\"product:tea;place:top\">Tea</a> "
            "<a href='https://shop.example/privacy' ses:no-track>Privacy</a></body></html>")
    mid = v2.send_email(FromEmailAddress="news@shop.example", Destination={"ToAddresses": ["gus@example.com"]},
                        ConfigurationSetName="engaged", EmailTags=[{"Name": "campaign", "Value": "tea"}],
                        Content={"Simple": {"Subject": {"Data": "Tea time"}, "Body": {"Html": {"Data": html}}}}
                        )["MessageId"]
    (mail,) = unkai.wait_for_mail(to="gus@example.com", subject="Tea time", after=after)
    body = mail["html"]
    assert "ses:tags" not in body and "ses:no-track" not in body
    assert "href='https://shop.example/privacy'" in body  # not tracked
    (tracked,) = re.findall(r'href="([^"]+)"', body)
    assert tracked.startswith(f"{unkai.endpoint}/_unkai/ses/click/")
    (pixel,) = re.findall(r'<img alt="" src="([^"]+)"', body)
    assert body.index(pixel) < body.index("</body>")
    opened = httpx.get(pixel, headers={"user-agent": "MailReader/1.0"}, timeout=10)
    assert opened.status_code == 200 and opened.headers["content-type"] == "image/gif"
    clicked = httpx.get(tracked, headers={"user-agent": "MailReader/1.0"}, timeout=10, follow_redirects=False)
    assert clicked.status_code == 302 and clicked.headers["location"] == "https://shop.example/tea?id=1&c=2"
    got = {e["eventType"]: e for e in events()}
    assert set(got) == {"Open", "Click"}
    assert got["Open"]["mail"]["messageId"] == mid and got["Open"]["open"]["userAgent"] == "MailReader/1.0"
    assert got["Open"]["mail"]["tags"]["campaign"] == ["tea"]
    click = got["Click"]["click"]
    assert click["link"] == "https://shop.example/tea?id=1&c=2"
    assert click["linkTags"] == {"product": ["tea"], "place": ["top"]}
    assert click["ipAddress"] == "127.0.0.1" and click["timestamp"].endswith("Z")
    # without an Open or Click destination, nothing is rewritten
    unkai.advance(1.1)
    v2.send_email(FromEmailAddress="news@shop.example", Destination={"ToAddresses": ["gus@example.com"]},
                  Content={"Simple": {"Subject": {"Data": "Plain"}, "Body": {"Html": {"Data": html}}}})
    (plain,) = unkai.wait_for_mail(to="gus@example.com", subject="Plain", after=after)
    assert "_unkai/ses/click" not in plain["html"] and "<img" not in plain["html"]
    assert httpx.get(f"{unkai.endpoint}/_unkai/ses/click/{mid}/7", timeout=10).status_code == 404
