"""Helpers for the SES tests: each test takes its own region (SES's account settings,
sandbox and quotas are per region, so tests sharing one server cannot disturb each
other), and verifies addresses the way a person does, by following the link in the
verification mail."""

from __future__ import annotations

import itertools
import re
import urllib.request
from typing import Any

_REGIONS = itertools.cycle(["us-east-2", "us-west-1", "us-west-2", "eu-west-1", "eu-west-2", "eu-west-3",
                            "eu-central-1", "eu-north-1", "ap-south-1", "ap-southeast-1", "ap-southeast-2",
                            "ap-northeast-2", "ap-northeast-3", "ca-central-1", "sa-east-1", "eu-south-1",
                            "af-south-1", "me-south-1", "ap-east-1", "il-central-1"])
_SEEN: set[str] = set()


def fresh_region() -> str:
    """A region no other SES test in this session has used."""
    for region in _REGIONS:
        if region not in _SEEN:
            _SEEN.add(region)
            return region
    raise RuntimeError("out of regions")


def verify(unkai: Any, ses: Any, address: str) -> None:
    """VerifyEmailIdentity, then follow the link in the verification mail."""
    after = unkai.mail_seq()
    ses.verify_email_identity(EmailAddress=address)
    (mail,) = unkai.wait_for_mail(to=address, subject="Email Address Verification Request", after=after)
    link = re.search(r"http://\S+/_unkai/ses/verify\?\S+", mail["text"]).group(0)
    with urllib.request.urlopen(link, timeout=10) as resp:
        assert resp.status == 200


def code(exc: Any) -> str:
    return exc.value.response["Error"]["Code"]


def message(exc: Any) -> str:
    return exc.value.response["Error"]["Message"]
