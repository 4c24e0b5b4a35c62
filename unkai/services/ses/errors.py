"""Every error SES answers, in AWS's words. v1 (query) and v2 (rest-json) name the same
failure differently (``TemplateDoesNotExist`` / ``NotFoundException``), so each
constructor takes ``v2`` and picks the code the caller's API uses."""

from __future__ import annotations

from unkai.protocol import ServiceError


def invalid(message: str, v2: bool = False) -> ServiceError:
    return ServiceError("BadRequestException" if v2 else "InvalidParameterValue", message)


def rejected(message: str) -> ServiceError:
    return ServiceError("MessageRejected", message)


def not_verified(identities: list[str], region: str) -> ServiceError:
    return rejected("Email address is not verified. The following identities failed the check in region "
                    f"{region.upper()}: {', '.join(identities)}")


def daily_quota() -> ServiceError:
    return rejected("Daily message quota exceeded.")


def throttled(v2: bool = False) -> ServiceError:
    if v2:
        return ServiceError("TooManyRequestsException", "Maximum sending rate exceeded.")
    return ServiceError("Throttling", "Maximum sending rate exceeded.")


def too_large(limit: int, length: int, v2: bool = False) -> ServiceError:
    # AWS's answer, as SendRawEmail gives it: "InvalidParameterValue: Message length is
    # more than 10485760 bytes long: '12078147'." (aws/aws-sdk-go-v2 issue 1774)
    return invalid(f"Message length is more than {limit} bytes long: '{length}'.", v2)


def too_many_recipients(v2: bool = False) -> ServiceError:
    return invalid("Recipient count exceeds 50.", v2)


def account_paused(v2: bool = False) -> ServiceError:
    if v2:
        return ServiceError("SendingPausedException", "Email sending is disabled for this account.")
    return ServiceError("AccountSendingPausedException", "Email sending is disabled for this account.")


def config_set_paused(name: str, v2: bool = False) -> ServiceError:
    if v2:
        return ServiceError("SendingPausedException", f"Sending is paused for the configuration set {name}.")
    return ServiceError("ConfigurationSetSendingPausedException",
                        f"Sending is paused for this configuration set: {name}", ConfigurationSetName=name)


def mail_from_not_verified(domain: str) -> ServiceError:
    return ServiceError("MailFromDomainNotVerifiedException",
                        f"The MAIL FROM domain {domain} is not verified.")


def template_missing(name: str, v2: bool = False) -> ServiceError:
    if v2:
        return ServiceError("NotFoundException", f"Template {name} does not exist.")
    return ServiceError("TemplateDoesNotExistException", f"Template {name} does not exist.", TemplateName=name)


def template_exists(name: str, v2: bool = False) -> ServiceError:
    if v2:
        return ServiceError("AlreadyExistsException", f"Template {name} already exists.")
    return ServiceError("AlreadyExistsException", f"Template {name} already exists.", Name=name)


def invalid_template(name: str, message: str) -> ServiceError:
    return ServiceError("InvalidTemplateException", message, TemplateName=name)


def missing_attribute(name: str, template: str) -> ServiceError:
    return ServiceError("MissingRenderingAttributeException",
                        f"Attribute '{name}' is not present in the rendering data.", TemplateName=template)


def invalid_rendering_data(v2: bool = False) -> ServiceError:
    if v2:
        return ServiceError("BadRequestException", "Template rendering data is invalid")
    return ServiceError("InvalidRenderingParameterException", "Template rendering data is invalid")


def config_set_missing(name: str, v2: bool = False) -> ServiceError:
    if v2:
        return ServiceError("NotFoundException", f"Configuration set {name} does not exist.")
    return ServiceError("ConfigurationSetDoesNotExistException", f"Configuration set <{name}> does not exist.",
                        ConfigurationSetName=name)


def config_set_exists(name: str, v2: bool = False) -> ServiceError:
    if v2:
        return ServiceError("AlreadyExistsException", f"Configuration set <{name}> already exists.")
    return ServiceError("ConfigurationSetAlreadyExistsException", f"Configuration set <{name}> already exists.",
                        ConfigurationSetName=name)


def destination_missing(config_set: str, name: str, v2: bool = False) -> ServiceError:
    if v2:
        return ServiceError("NotFoundException", f"Event destination {name} does not exist.")
    return ServiceError("EventDestinationDoesNotExistException",
                        f"No EventDestination found for {name} in ConfigurationSet <{config_set}>",
                        ConfigurationSetName=config_set, EventDestinationName=name)


def destination_exists(config_set: str, name: str, v2: bool = False) -> ServiceError:
    if v2:
        return ServiceError("AlreadyExistsException", f"Event destination {name} already exists.")
    return ServiceError("EventDestinationAlreadyExistsException",
                        f"Event destination {name} already exists in configuration set {config_set}.",
                        ConfigurationSetName=config_set, EventDestinationName=name)


def invalid_sns_destination(config_set: str, name: str, arn: str) -> ServiceError:
    return ServiceError("InvalidSNSDestinationException", f"SNS topic <{arn}> does not exist.",
                        ConfigurationSetName=config_set, EventDestinationName=name)


def invalid_topic(arn: str) -> ServiceError:
    return ServiceError("InvalidParameterValue", f"Invalid SNS topic ARN: {arn}")


def identity_missing(identity: str) -> ServiceError:
    return ServiceError("NotFoundException", f"Email identity {identity} does not exist.")


def identity_exists(identity: str) -> ServiceError:
    return ServiceError("AlreadyExistsException", f"Email identity {identity} already exist.")


def not_found(message: str) -> ServiceError:
    return ServiceError("NotFoundException", message)


def already_exists(message: str, v2: bool = True) -> ServiceError:
    return ServiceError("AlreadyExistsException" if v2 else "AlreadyExistsException", message)


def limit(message: str, v2: bool = False) -> ServiceError:
    return ServiceError("LimitExceededException", message)


def rule_set_missing(name: str) -> ServiceError:
    return ServiceError("RuleSetDoesNotExistException", f"Rule set does not exist: {name}", Name=name)


def rule_missing(name: str) -> ServiceError:
    return ServiceError("RuleDoesNotExistException", f"Rule does not exist: {name}", Name=name)


def cannot_delete(message: str) -> ServiceError:
    return ServiceError("CannotDeleteException", message)


# -- v2 list management -----------------------------------------------------------------------


def bad(message: str) -> ServiceError:
    return ServiceError("BadRequestException", message)


def list_exists(name: str) -> ServiceError:
    return ServiceError("AlreadyExistsException", f"List with name {name} already exists.")


def list_limit() -> ServiceError:
    return ServiceError("LimitExceededException", "Maximum number of contact lists per account reached.")


def list_missing(name: str) -> ServiceError:
    return ServiceError("NotFoundException", f"List with name {name} does not exist.")


def contact_exists(name: str) -> ServiceError:
    return ServiceError("AlreadyExistsException", f"Contact already exists in list {name}")


def contact_missing(email: str, name: str) -> ServiceError:
    return ServiceError("NotFoundException", f"Contact {email} does not exist in list {name}.")
