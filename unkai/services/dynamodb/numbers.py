"""DynamoDB's numbers: decimal, up to 38 significant digits, magnitudes from 1E-130 to
below 1E+126, compared by value and returned in a canonical plain form ("1.50" and
"15E-1" are both "1.5")."""

from __future__ import annotations

import decimal
import re
from decimal import Decimal

from unkai.services.dynamodb.errors import validation

# Wide enough that no arithmetic on valid numbers rounds: the result is checked after.
CONTEXT = decimal.Context(prec=400, Emax=999999, Emin=-999999, traps=[decimal.InvalidOperation])
_SYNTAX = re.compile(r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$")
MAX_DIGITS = 38


def parse(text: str) -> Decimal:
    """A validated number (raises ValidationException with AWS's wording)."""
    if not isinstance(text, str) or not _SYNTAX.match(text) or len(text) > 1000:
        raise validation("A value provided cannot be converted into a number")
    return check(Decimal(text))


def check(value: Decimal) -> Decimal:
    """Raise unless ``value`` fits DynamoDB's range and precision."""
    if not value:
        return Decimal(0)
    value = value.normalize(CONTEXT)
    _, digits, _ = value.as_tuple()
    if len(digits) > MAX_DIGITS:
        raise validation("Attempting to store more than 38 significant digits in a Number")
    adjusted = value.adjusted()
    if adjusted > 125:
        raise validation("Number overflow. Attempting to store a number with magnitude larger than supported range")
    if adjusted < -130:
        raise validation("Number underflow. Attempting to store a number with magnitude smaller than supported range")
    return value


def canonical(text: str) -> str:
    """The form DynamoDB hands a number back in."""
    return format_number(parse(text))


def format_number(value: Decimal) -> str:
    if not value:
        return "0"
    return format(value.normalize(CONTEXT), "f")


def add(a: str, b: str) -> str:
    return format_number(check(CONTEXT.add(Decimal(a), Decimal(b))))


def subtract(a: str, b: str) -> str:
    return format_number(check(CONTEXT.subtract(Decimal(a), Decimal(b))))
