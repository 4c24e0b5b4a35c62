"""SES templates: storing them in both APIs, SES's Handlebars rendering and its errors,
templated and bulk sends, a rendering failure reported as an event; and the
``AWS::SES::*`` template resources read back through the API."""

from __future__ import annotations

import json
import textwrap

import pytest
from botocore.exceptions import ClientError

from tests.ses_support import code, fresh_region, message
from unkai.testing import UnkaiServer, new_queue, receive_all

ORDER = {"TemplateName": "order", "SubjectPart": "Order {{order.id}} for {{name}}",
         "TextPart": "Hi {{name}},\n{{#each items}}- {{this.title}} x{{this.qty}}\n{{/each}}"
                     "{{#if vip}}Thanks for being VIP!{{else}}Join VIP.{{/if}}",
         "HtmlPart": "<h1>{{name}} & co</h1>{{{note}}}"}


@pytest.fixture(scope="module")
def region(unkai):
    region = fresh_region()
    ses, v2 = unkai.client("ses", region), unkai.client("sesv2", region)
    ses.create_template(Template=ORDER)
    v2.put_account_details(MailType="TRANSACTIONAL", WebsiteURL="https://example.com", ProductionAccessEnabled=True)
    ses.verify_domain_identity(Domain="tpl.example")
    unkai.advance(61)
    return region


def test_templates_are_stored_once_and_seen_by_both_apis(unkai, region):
    ses, v2 = unkai.client("ses", region), unkai.client("sesv2", region)
    assert ses.get_template(TemplateName="order")["Template"] == ORDER
    got = v2.get_email_template(TemplateName="order")
    assert got["TemplateContent"]["Subject"] == ORDER["SubjectPart"]
    with pytest.raises(ClientError) as exc:
        ses.create_template(Template=ORDER)
    assert code(exc) == "AlreadyExists"
    with pytest.raises(ClientError) as exc:
        ses.get_template(TemplateName="nope")
    assert code(exc) == "TemplateDoesNotExist" and message(exc) == "Template nope does not exist."
    with pytest.raises(ClientError) as exc:
        v2.get_email_template(TemplateName="nope")
    assert code(exc) == "NotFoundException"
    v2.create_email_template(TemplateName="tmp", TemplateContent={"Subject": "s", "Text": "t"})
    names = [t["Name"] for t in ses.list_templates()["TemplatesMetadata"]]
    assert names == ["order", "tmp"]
    v2.update_email_template(TemplateName="tmp", TemplateContent={"Subject": "s2", "Text": "t"})
    assert ses.get_template(TemplateName="tmp")["Template"]["SubjectPart"] == "s2"
    ses.update_template(Template={"TemplateName": "tmp", "SubjectPart": "s3 {{x}}", "TextPart": "t"})
    rendered = v2.test_render_email_template(TemplateName="tmp", TemplateData='{"x": "y"}')["RenderedTemplate"]
    assert "Subject: s3 y" in rendered
    ses.delete_template(TemplateName="tmp")
    assert [t["TemplateName"] for t in v2.list_email_templates()["TemplatesMetadata"]] == ["order"]
    v2.create_email_template(TemplateName="tmp2", TemplateContent={"Subject": "s", "Text": "t"})
    v2.delete_email_template(TemplateName="tmp2")
    with pytest.raises(ClientError) as exc:
        v2.delete_email_template(TemplateName="tmp2")
    assert code(exc) == "NotFoundException"
    with pytest.raises(ClientError) as exc:
        ses.update_template(Template={"TemplateName": "gone", "SubjectPart": "s"})
    assert code(exc) == "TemplateDoesNotExist"


def test_rendering_follows_handlebars_without_escaping(unkai, region):
    ses = unkai.client("ses", region)
    data = {"name": "Ann", "order": {"id": 7}, "items": [{"title": "Tea", "qty": 2}, {"title": "Cup", "qty": 1}],
            "vip": True, "note": "<b>soon</b>"}
    rendered = ses.test_render_template(TemplateName="order", TemplateData=json.dumps(data))["RenderedTemplate"]
    assert "\r\n" in rendered  # MIME's line endings
    rendered = rendered.replace("\r\n", "\n")
    assert "Subject: Order 7 for Ann" in rendered
    assert "- Tea x2\n- Cup x1\nThanks for being VIP!" in rendered
    assert "<h1>Ann & co</h1><b>soon</b>" in rendered
    with pytest.raises(ClientError) as exc:
        ses.test_render_template(TemplateName="order", TemplateData=json.dumps({"order": {"id": 1}}))
    assert code(exc) == "MissingRenderingAttribute"
    assert message(exc) == "Attribute 'name' is not present in the rendering data."
    with pytest.raises(ClientError) as exc:
        ses.test_render_template(TemplateName="order", TemplateData="not json")
    assert code(exc) == "InvalidRenderingParameter"
    with pytest.raises(ClientError) as exc:
        ses.create_template(Template={"TemplateName": "broken", "SubjectPart": "{{#if x}}never closed"})
    assert code(exc) == "InvalidTemplate"


def test_templated_and_bulk_sends_render_per_destination(unkai, region):
    ses, v2 = unkai.client("ses", region), unkai.client("sesv2", region)
    after = unkai.mail_seq()
    ses.send_templated_email(Source="shop@tpl.example", Destination={"ToAddresses": ["ann@tpl.example"]},
                             Template="order", TemplateData=json.dumps({"name": "Ann", "order": {"id": 1},
                                                                        "items": [], "note": ""}))
    (mail,) = unkai.wait_for_mail(to="ann@tpl.example", after=after)
    assert mail["subject"] == "Order 1 for Ann" and "Join VIP." in mail["text"]
    result = ses.send_bulk_templated_email(
        Source="shop@tpl.example", Template="order",
        DefaultTemplateData=json.dumps({"order": {"id": 9}, "items": [], "note": "", "name": "friend"}),
        Destinations=[{"Destination": {"ToAddresses": ["bo@tpl.example"]},
                       "ReplacementTemplateData": json.dumps({"name": "Bo"})},
                      {"Destination": {"ToAddresses": ["not an address"]}}])
    statuses = result["Status"]
    assert statuses[0]["Status"] == "Success" and statuses[1]["Status"] == "InvalidParameterValue"
    (bo,) = unkai.wait_for_mail(to="bo@tpl.example", after=after)
    assert bo["subject"] == "Order 9 for Bo"
    out = v2.send_bulk_email(
        FromEmailAddress="shop@tpl.example",
        DefaultContent={"Template": {"TemplateName": "order", "TemplateData": json.dumps(
            {"order": {"id": 3}, "items": [], "note": "", "name": "x"})}},
        BulkEmailEntries=[{"Destination": {"ToAddresses": ["cy@tpl.example"]}, "ReplacementEmailContent": {
            "ReplacementTemplate": {"ReplacementTemplateData": json.dumps({"name": "Cy"})}}}])
    assert out["BulkEmailEntryResults"][0]["Status"] == "SUCCESS"
    inline = v2.send_email(FromEmailAddress="shop@tpl.example", Destination={"ToAddresses": ["di@tpl.example"]},
                           Content={"Template": {"TemplateContent": {"Subject": "Hi {{n}}", "Text": "Yo {{n}}"},
                                                 "TemplateData": json.dumps({"n": "Di"})}})
    assert inline["MessageId"]
    subjects = {m["to"][0]: m["subject"] for m in unkai.mail() if m["seq"] > after}
    assert subjects["cy@tpl.example"] == "Order 3 for Cy" and subjects["di@tpl.example"] == "Hi Di"


def test_a_missing_attribute_at_send_time_is_a_rendering_failure_event_not_a_mail(unkai, region):
    ses, sns, sqs = unkai.client("ses", region), unkai.client("sns", region), unkai.client("sqs", region)
    topic = sns.create_topic(Name="render-failures")["TopicArn"]
    url, arn = new_queue(sqs)
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    ses.create_configuration_set(ConfigurationSet={"Name": "render"})
    ses.create_configuration_set_event_destination(ConfigurationSetName="render", EventDestination={
        "Name": "sns", "Enabled": True, "MatchingEventTypes": ["renderingFailure"],
        "SNSDestination": {"TopicARN": topic}})
    after = unkai.mail_seq()
    mid = ses.send_templated_email(Source="shop@tpl.example", Destination={"ToAddresses": ["eve@tpl.example"]},
                                   Template="order", TemplateData='{"order": {"id": 2}}',
                                   ConfigurationSetName="render")["MessageId"]
    unkai.drain()
    (event,) = [json.loads(b) for b in receive_all(sqs, url)]
    assert event["eventType"] == "Rendering Failure" and event["mail"]["messageId"] == mid
    assert event["failure"] == {"errorMessage": "Attribute 'name' is not present in the rendering data.",
                                "templateName": "order"}
    assert [m for m in unkai.mail("eve@tpl.example") if m["seq"] > after] == []


TEMPLATE = textwrap.dedent("""\
    AWSTemplateFormatVersion: '2010-09-09'
    Resources:
      Sender:
        Type: AWS::SES::EmailIdentity
        Properties:
          EmailIdentity: mail.example
          ConfigurationSetAttributes:
            ConfigurationSetName: !Ref Tracking
      Tracking:
        Type: AWS::SES::ConfigurationSet
        Properties:
          Name: tracking
      Bounces:
        Type: AWS::SNS::Topic
      ToSns:
        Type: AWS::SES::ConfigurationSetEventDestination
        Properties:
          ConfigurationSetName: !Ref Tracking
          EventDestination:
            Name: bounces
            Enabled: true
            MatchingEventTypes: [bounce, complaint]
            SnsDestination:
              TopicARN: !Ref Bounces
      Inbound:
        Type: AWS::SES::ReceiptRuleSet
        Properties:
          RuleSetName: inbound
      Store:
        Type: AWS::SES::ReceiptRule
        Properties:
          RuleSetName: !Ref Inbound
          Rule:
            Name: store
            Enabled: true
            Recipients: [mail.example]
            Actions:
              - SNSAction:
                  TopicArn: !Ref Bounces
      Welcome:
        Type: AWS::SES::Template
        Properties:
          Template:
            TemplateName: welcome
            SubjectPart: Welcome {{name}}
            TextPart: Hello {{name}}
      Customers:
        Type: AWS::SES::ContactList
        Properties:
          ContactListName: customers
          Description: everyone who bought
          Topics:
            - TopicName: offers
              DisplayName: Offers
              DefaultSubscriptionStatus: OPT_IN
    Outputs:
      Dkim1:
        Value: !GetAtt Sender.DkimDNSTokenName1
      ListName:
        Value: !Ref Customers
    """)


def test_template_resources_are_the_apis_rows(tmp_path):
    (tmp_path / "template.yaml").write_text(TEMPLATE)
    server = UnkaiServer(tmp_path / "state", str(tmp_path / "template.yaml")).start()
    try:
        v2 = server.client("sesv2")
        ident = v2.get_email_identity(EmailIdentity="mail.example")
        assert ident["ConfigurationSetName"] == "tracking" and len(ident["DkimAttributes"]["Tokens"]) == 3
        dests = v2.get_configuration_set_event_destinations(ConfigurationSetName="tracking")["EventDestinations"]
        assert dests[0]["Name"] == "bounces" and dests[0]["MatchingEventTypes"] == ["BOUNCE", "COMPLAINT"]
        assert dests[0]["SnsDestination"]["TopicArn"].endswith(":Bounces") or "Bounces" in \
            dests[0]["SnsDestination"]["TopicArn"]
        assert v2.get_email_template(TemplateName="welcome")["TemplateContent"]["Subject"] == "Welcome {{name}}"
        contact_list = v2.get_contact_list(ContactListName="customers")
        assert contact_list["Description"] == "everyone who bought"
        assert contact_list["Topics"] == [{"TopicName": "offers", "DisplayName": "Offers",
                                           "DefaultSubscriptionStatus": "OPT_IN"}]
        rule = server.client("ses").describe_receipt_rule(RuleSetName="inbound", RuleName="store")["Rule"]
        assert rule["Enabled"] is True and rule["Recipients"] == ["mail.example"]
        stack = server.client("cloudformation").describe_stacks()["Stacks"][0]
        out = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
        assert out["Dkim1"] == f"{ident['DkimAttributes']['Tokens'][0]}._domainkey.mail.example"
        assert out["ListName"] == "customers"
    finally:
        server.stop()
