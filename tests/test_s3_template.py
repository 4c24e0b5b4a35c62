"""AWS::S3::Bucket and AWS::S3::BucketPolicy from a template deployed by ``unkai up``,
with CloudFormation's Ref and GetAtt (the website URL rewritten to the local one)."""

from __future__ import annotations

import json

import httpx

from unkai.testing import UnkaiServer

TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  Uploads:
    Type: AWS::SQS::Queue
  Site:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: tmpl-site
      VersioningConfiguration: {Status: Enabled}
      Tags: [{Key: app, Value: demo}]
      CorsConfiguration:
        CorsRules: [{AllowedMethods: [GET], AllowedOrigins: ["*"], MaxAge: 300}]
      WebsiteConfiguration:
        IndexDocument: index.html
        ErrorDocument: error.html
        RoutingRules:
          - RoutingRuleCondition: {KeyPrefixEquals: old/}
            RedirectRule: {ReplaceKeyPrefixWith: new/}
      LifecycleConfiguration:
        Rules: [{Id: tmp, Status: Enabled, Prefix: tmp/, ExpirationInDays: 1}]
      NotificationConfiguration:
        QueueConfigurations:
          - Event: "s3:ObjectCreated:*"
            Queue: !GetAtt Uploads.Arn
            Filter: {S3Key: {Rules: [{Name: suffix, Value: .txt}]}}
  Generated:
    Type: AWS::S3::Bucket
  SitePolicy:
    Type: AWS::S3::BucketPolicy
    Properties:
      Bucket: !Ref Site
      PolicyDocument:
        Version: "2012-10-17"
        Statement: [{Effect: Allow, Principal: "*", Action: "s3:GetObject", Resource: !Sub "${Site.Arn}/*"}]
Outputs:
  Name: {Value: !Ref Site}
  Arn: {Value: !GetAtt Site.Arn}
  DomainName: {Value: !GetAtt Site.DomainName}
  RegionalDomainName: {Value: !GetAtt Site.RegionalDomainName}
  WebsiteURL: {Value: !GetAtt Site.WebsiteURL}
  AwsWebsite: {Value: !Sub "http://${Site}.s3-website-${AWS::Region}.amazonaws.com"}
  Generated: {Value: !Ref Generated}
  QueueUrl: {Value: !Ref Uploads}
"""


def test_bucket_resources_from_a_template(tmp_path):
    (tmp_path / "template.yaml").write_text(TEMPLATE)
    server = UnkaiServer(tmp_path / "state", str(tmp_path / "template.yaml"), "--stack-name", "demo").start()
    try:
        cfn = server.client("cloudformation")
        outputs = {o["OutputKey"]: o["OutputValue"] for o in cfn.describe_stacks(StackName="demo")["Stacks"][0]
                   .get("Outputs", [])}
        port = server.endpoint.rsplit(":", 1)[1]
        assert outputs["Name"] == "tmpl-site" and outputs["Arn"] == "arn:aws:s3:::tmpl-site"
        assert outputs["DomainName"] == "tmpl-site.s3.amazonaws.com"
        assert outputs["RegionalDomainName"] == "tmpl-site.s3.us-east-1.amazonaws.com"
        assert outputs["WebsiteURL"] == f"{server.endpoint}/_unkai/website/tmpl-site"
        assert outputs["AwsWebsite"] == outputs["WebsiteURL"]
        generated = outputs["Generated"]
        assert generated.startswith("demo-generated-") and generated == generated.lower()

        s3 = server.client("s3")
        assert s3.get_bucket_versioning(Bucket="tmpl-site")["Status"] == "Enabled"
        assert s3.get_bucket_tagging(Bucket="tmpl-site")["TagSet"] == [{"Key": "app", "Value": "demo"}]
        assert s3.get_bucket_cors(Bucket="tmpl-site")["CORSRules"][0]["MaxAgeSeconds"] == 300
        assert s3.get_bucket_lifecycle_configuration(Bucket="tmpl-site")["Rules"][0]["Expiration"] == {"Days": 1}
        assert json.loads(s3.get_bucket_policy(Bucket="tmpl-site")["Policy"])["Statement"][0]["Action"] == \
            "s3:GetObject"
        website = s3.get_bucket_website(Bucket="tmpl-site")
        assert website["IndexDocument"] == {"Suffix": "index.html"}
        assert website["RoutingRules"][0]["Redirect"] == {"ReplaceKeyPrefixWith": "new/"}

        s3.put_object(Bucket="tmpl-site", Key="index.html", Body=b"<h1>deployed</h1>", ContentType="text/html")
        s3.put_object(Bucket="tmpl-site", Key="notes.txt", Body=b"n")
        assert httpx.get(outputs["WebsiteURL"], follow_redirects=True).text == "<h1>deployed</h1>"
        browser = f"tmpl-site.s3-website-us-east-1.localhost:{port}"
        assert httpx.get(server.endpoint + "/", headers={"Host": browser}).text == "<h1>deployed</h1>"
        assert f"{outputs['WebsiteURL']}/" in server.output() and f"http://{browser}/" in server.output()

        sqs = server.client("sqs")
        bodies = [json.loads(m["Body"]) for m in sqs.receive_message(
            QueueUrl=outputs["QueueUrl"], MaxNumberOfMessages=10).get("Messages", [])]
        events = [b.get("Event") or b["Records"][0]["eventName"] for b in bodies]
        assert events == ["s3:TestEvent", "ObjectCreated:Put"]
    finally:
        server.stop()
