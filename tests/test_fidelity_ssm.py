"""Parameter Store answers as AWS does, in the details clients branch on (issue 23, item 3: SSM).
The filter messages (with their trailing periods) are AWS's, as public suites verified against
AWS record them."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError


@pytest.fixture(scope="module")
def ssm(unkai):
    return unkai.client("ssm")


def error_of(exc: pytest.ExceptionInfo) -> tuple[str, str]:
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


def test_a_parameter_is_found_by_its_arn_with_or_without_a_hierarchy(ssm):
    path = f"/fid/{time.time_ns()}/db"
    plain = f"plain{time.time_ns()}"
    ssm.put_parameter(Name=path, Value="hier", Type="String")
    ssm.put_parameter(Name=plain, Value="flat", Type="String")
    arn = "arn:aws:ssm:us-east-1:000000000000:parameter"
    assert ssm.get_parameter(Name=f"{arn}{path}")["Parameter"]["Value"] == "hier"
    got = ssm.get_parameter(Name=f"{arn}/{plain}")["Parameter"]
    assert (got["Name"], got["Value"]) == (plain, "flat")
    assert ssm.get_parameter(Name=f"{arn}{path}:1")["Parameter"]["Version"] == 1


@pytest.mark.parametrize("filters,code,message", [
    ([{"Key": "Path", "Option": "Equals", "Values": ["/x"]}], "InvalidFilterOption",
     "The following filter option is not valid: Equals. Valid options include: [Recursive, OneLevel]."),
    ([{"Key": "Name", "Option": "Nope", "Values": ["x"]}], "InvalidFilterOption",
     "The following filter option is not valid: Nope. Valid options include: [BeginsWith, Equals]."),
    ([{"Key": "Tier", "Values": ["test"]}], "InvalidFilterValue",
     "The following filter value is not valid: test. Valid values include: [Standard, Advanced, Intelligent-Tiering]."),
    ([{"Key": "Type", "Values": ["test"]}], "InvalidFilterValue",
     "The following filter value is not valid: test. Valid values include: [String, StringList, SecureString]."),
    ([{"Key": "Label", "Values": ["x"]}], "InvalidFilterKey",
     "The following filter key is not valid: Label. Valid filter keys include: [Path, Name, Type, KeyId, Tier]."),
    ([{"Key": "Name", "Values": ["a"]}, {"Key": "Name", "Values": ["b"]}], "InvalidFilterKey",
     "The following filter is duplicated in the request: Name. A request can contain only one occurrence of a "
     "specific filter."),
    ([{"Key": "Path", "Values": ["/aws/x"]}], "ValidationException",
     "Filters for common parameters can't be prefixed with \"aws\" or \"ssm\" (case-insensitive). When using global "
     "parameters, please specify within a global namespace."),
])
def test_describe_parameters_checks_its_filters_as_aws_does(ssm, filters, code, message):
    with pytest.raises(ClientError) as exc:
        ssm.describe_parameters(ParameterFilters=filters)
    assert error_of(exc) == (code, message)


def test_get_parameters_by_path_refuses_name_path_and_tier_filters_and_bad_paths(ssm):
    with pytest.raises(ClientError) as exc:
        ssm.get_parameters_by_path(Path="/fid", ParameterFilters=[{"Key": "Name", "Values": ["x"]}])
    assert error_of(exc) == ("InvalidFilterKey", "The following filter key is not valid: Name. Valid filter keys "
                             "include: [Type, KeyId].")
    with pytest.raises(ClientError) as exc:
        ssm.get_parameters_by_path(Path="fid")
    code, message = error_of(exc)
    assert code == "ValidationException" and message.endswith("Valid example: /get/parameters2-/by1./path0_.")
