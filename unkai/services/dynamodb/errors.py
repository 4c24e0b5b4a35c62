"""The errors DynamoDB answers with, worded as AWS words them."""

from __future__ import annotations

from unkai.protocol import ServiceError


def validation(message: str) -> ServiceError:
    return ServiceError("ValidationException", message)


def invalid(message: str) -> ServiceError:
    """'One or more parameter values were invalid: ...', AWS's most common prefix."""
    return ServiceError("ValidationException", f"One or more parameter values were invalid: {message}")


def not_found(message: str = "Requested resource not found") -> ServiceError:
    return ServiceError("ResourceNotFoundException", message)


def in_use(message: str) -> ServiceError:
    return ServiceError("ResourceInUseException", message)


def condition_failed(item: dict | None = None) -> ServiceError:
    fields = {"Item": item} if item is not None else {}
    return ServiceError("ConditionalCheckFailedException", "The conditional request failed", **fields)


def table_not_found(name: str) -> ServiceError:
    """What the backup operations answer for a table that does not exist."""
    return ServiceError("TableNotFoundException", f"Table not found: {name}")


def throughput_exceeded(arn: str, kind: str, index: str = "") -> ServiceError:
    """A request over a PROVISIONED table's (or global index's) capacity and burst, in AWS's
    words, with the ThrottlingReasons (``Table``/``Index`` + ``Read``/``Write`` +
    ``ProvisionedThroughputExceeded``, and the table's or index's ARN) AWS now adds."""
    op = "Read" if kind == "R" else "Write"
    if index:
        reason = {"reason": f"Index{op}ProvisionedThroughputExceeded", "resource": f"{arn}/index/{index}"}
        return ServiceError("ProvisionedThroughputExceededException",
                            "The level of configured provisioned throughput for one or more global secondary "
                            "indexes of the table was exceeded. Consider increasing your provisioning level for "
                            "the under-provisioned global secondary indexes with the UpdateTable API",
                            ThrottlingReasons=[reason])
    return ServiceError("ProvisionedThroughputExceededException",
                        "The level of configured provisioned throughput for the table was exceeded. Consider "
                        "increasing your provisioning level with the UpdateTable API.",
                        ThrottlingReasons=[{"reason": f"Table{op}ProvisionedThroughputExceeded", "resource": arn}])


def export_not_found(arn: str) -> ServiceError:
    return ServiceError("ExportNotFoundException", f"Export not found: {arn}")


def import_not_found(arn: str) -> ServiceError:
    return ServiceError("ImportNotFoundException", f"Import not found: {arn}")


def invalid_export_time(message: str = "Export Time is invalid") -> ServiceError:
    """AWS's words for an ExportTime outside the recovery window (ScyllaDB's AWS-run suite)."""
    return ServiceError("InvalidExportTimeException", message)
