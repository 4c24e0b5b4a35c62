"""DynamoDB's expression language: condition, filter, key condition, update and
projection expressions, parsed once (``parser``) and evaluated per item
(``evaluate``, ``update``)."""

from unkai.services.dynamodb.expressions.evaluate import Env, check_literals, holds, project
from unkai.services.dynamodb.expressions.parser import parse_condition, parse_projection, parse_update

__all__ = ["Env", "check_literals", "holds", "parse_condition", "parse_projection", "parse_update", "project"]
