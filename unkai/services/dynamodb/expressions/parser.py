"""A recursive-descent parser for DynamoDB's expression language, with AWS's
precedence (comparators, IN, BETWEEN, functions, parentheses, NOT, AND, OR) and its
error messages. Parses are cached by text, so a hot request parses nothing."""

from __future__ import annotations

import functools

from unkai.services.dynamodb.errors import validation
from unkai.services.dynamodb.expressions.ast import (
    And, Arith, Between, Call, Compare, In, Not, Or, Parsed, Path, Ref, Update, Value,
)
from unkai.services.dynamodb.expressions.reserved import RESERVED
from unkai.services.dynamodb.expressions.tokens import Token, tokenize

MAX_LENGTH = 4096
MAX_OPERATORS = 300
MAX_NESTING = 100
MAX_PATH_DEPTH = 32
COMPARATORS = ("=", "<>", "<", "<=", ">", ">=")
# function -> (number of operands, which operands must be document paths)
CONDITION_FUNCTIONS = {
    "attribute_exists": (1, (0,)),
    "attribute_not_exists": (1, (0,)),
    "attribute_type": (2, (0,)),
    "begins_with": (2, (0,)),
    "contains": (2, (0,)),
}
OPERAND_FUNCTIONS = {"size": (1, (0,))}
UPDATE_FUNCTIONS = {"if_not_exists": (2, (0,)), "list_append": (2, ())}
SECTIONS = ("SET", "REMOVE", "ADD", "DELETE")


class Parser:
    def __init__(self, text: str, kind: str) -> None:
        self.text = text
        self.kind = kind
        if not text.strip():
            raise self.fail("The expression can not be empty;")
        if len(text.encode()) > MAX_LENGTH:
            raise self.fail(f"Expression size has exceeded the maximum allowed size; "
                            f"expression size: {len(text.encode())}")
        self.tokens = tokenize(text, kind)
        self.i = 0
        self.depth = 0
        self.operators = 0
        self.names: set[str] = set()
        self.values: set[str] = set()

    # -- plumbing -------------------------------------------------------------------

    def fail(self, message: str):
        return validation(f"Invalid {self.kind}: {message}")

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def next(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind != "eof":
            self.i += 1
        return tok

    def syntax_error(self, tok: Token | None = None):
        tok = tok or self.peek()
        index = self.tokens.index(tok) if tok in self.tokens else self.i
        start = self.tokens[index - 1].start if index > 0 else tok.start
        near = self.text[start:tok.end].strip()
        return self.fail(f'Syntax error; token: "{tok.text}", near: "{near}"')

    def expect_op(self, op: str) -> Token:
        tok = self.next()
        if tok.kind != "op" or tok.text != op:
            raise self.syntax_error(tok)
        return tok

    def at_op(self, op: str) -> bool:
        tok = self.peek()
        return tok.kind == "op" and tok.text == op

    def at_keyword(self, word: str) -> bool:
        tok = self.peek()
        return tok.kind == "name" and tok.text.upper() == word

    def count_operator(self) -> None:
        self.operators += 1
        if self.operators > MAX_OPERATORS:
            raise self.fail(f"The expression contains too many operators; operator count: {self.operators}")

    def end(self) -> None:
        tok = self.peek()
        if tok.kind != "eof":
            raise self.syntax_error(tok)

    def nest(self) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise self.fail(f"The expression has too many nesting levels; nesting levels: {self.depth}")

    # -- conditions -----------------------------------------------------------------

    def condition(self):
        self.nest()
        left = self.conjunction()
        while self.at_keyword("OR"):
            self.next()
            self.count_operator()
            left = Or(left, self.conjunction())
        self.depth -= 1
        return left

    def conjunction(self):
        left = self.negation()
        while self.at_keyword("AND"):
            self.next()
            self.count_operator()
            left = And(left, self.negation())
        return left

    def negation(self):
        if self.at_keyword("NOT"):
            self.next()
            self.count_operator()
            self.nest()
            node = Not(self.negation())
            self.depth -= 1
            return node
        return self.predicate()

    def predicate(self):
        tok = self.peek()
        if tok.kind == "op" and tok.text == "(":
            self.next()
            node = self.condition()
            self.expect_op(")")
            return node
        if tok.kind == "name" and self.peek(1).kind == "op" and self.peek(1).text == "(":
            call = self.call("condition")
            if call.name in CONDITION_FUNCTIONS:
                return call
            left = call
        else:
            left = self.operand("condition")
        tok = self.peek()
        if tok.kind == "op" and tok.text in COMPARATORS:
            self.next()
            self.count_operator()
            return Compare(tok.text, left, self.operand("condition"))
        if self.at_keyword("BETWEEN"):
            self.next()
            self.count_operator()
            low = self.operand("condition")
            if not self.at_keyword("AND"):
                raise self.syntax_error()
            self.next()
            return Between(left, low, self.operand("condition"))
        if self.at_keyword("IN"):
            self.next()
            self.count_operator()
            self.expect_op("(")
            choices = [self.operand("condition")]
            while self.at_op(","):
                self.next()
                choices.append(self.operand("condition"))
            self.expect_op(")")
            if len(choices) > 100:
                raise self.fail(f"The IN operator is provided with too many operands; "
                                f"number of operands: {len(choices)}")
            return In(left, tuple(choices))
        raise self.syntax_error(tok)

    # -- operands -------------------------------------------------------------------

    def operand(self, context: str):
        tok = self.peek()
        if tok.kind == "value":
            self.next()
            self.values.add(tok.text)
            return Value(tok.text)
        if tok.kind == "name" and self.peek(1).kind == "op" and self.peek(1).text == "(":
            call = self.call(context)
            if call.name in CONDITION_FUNCTIONS:
                raise self.fail(f"The function is not allowed to be used this way in an expression; "
                                f"function: {call.name}")
            return call
        if tok.kind in ("name", "ref"):
            return self.path()
        raise self.syntax_error(tok)

    def call(self, context: str) -> Call:
        name = self.next().text
        known = {**CONDITION_FUNCTIONS, **OPERAND_FUNCTIONS, **UPDATE_FUNCTIONS}
        if name not in known:
            raise self.fail(f"Invalid function name; function: {name}")
        allowed = UPDATE_FUNCTIONS if context == "update" else {**CONDITION_FUNCTIONS, **OPERAND_FUNCTIONS}
        if name not in allowed:
            if context == "update":
                raise self.fail(f"The function is not allowed in an update expression; function: {name}")
            raise self.fail(f"The function is not allowed to be used this way in an expression; function: {name}")
        self.count_operator()
        self.expect_op("(")
        self.nest()
        args = []
        if not self.at_op(")"):
            args.append(self.operand(context))
            while self.at_op(","):
                self.next()
                args.append(self.operand(context))
        self.expect_op(")")
        self.depth -= 1
        arity, path_args = known[name]
        if len(args) != arity:
            raise self.fail(f"Incorrect number of operands for operator or function; "
                            f"operator or function: {name}, number of operands: {len(args)}")
        for i in path_args:
            if not isinstance(args[i], Path):
                raise self.fail(f"Operator or function requires a document path; operator or function: {name}")
        return Call(name, tuple(args))

    def path(self) -> Path:
        elements: list = [self.path_name()]
        while True:
            if self.at_op("."):
                self.next()
                elements.append(self.path_name())
            elif self.at_op("["):
                self.next()
                tok = self.next()
                if tok.kind != "int":
                    raise self.syntax_error(tok)
                self.expect_op("]")
                elements.append(int(tok.text))
            else:
                break
        if len(elements) > MAX_PATH_DEPTH:
            raise self.fail(f"The document path has too many nesting levels; nesting levels: {len(elements)}")
        return Path(tuple(elements))

    def path_name(self):
        tok = self.next()
        if tok.kind == "ref":
            self.names.add(tok.text)
            return Ref(tok.text)
        if tok.kind == "name":
            if tok.text.upper() in RESERVED:
                raise self.fail(f"Attribute name is a reserved keyword; reserved keyword: {tok.text}")
            return tok.text
        raise self.syntax_error(tok)

    # -- update expressions ---------------------------------------------------------

    def update(self) -> Update:
        result = Update()
        seen: set[str] = set()
        if self.peek().kind == "eof":
            raise self.syntax_error()
        while self.peek().kind != "eof":
            tok = self.next()
            section = tok.text.upper() if tok.kind == "name" else ""
            if section not in SECTIONS:
                raise self.syntax_error(tok)
            if section in seen:
                raise self.fail(f'The "{section}" section can only be used once in an update expression;')
            seen.add(section)
            while True:
                self.count_operator()
                if section == "SET":
                    target = self.path()
                    self.expect_op("=")
                    result.set.append((target, self.set_value()))
                elif section == "REMOVE":
                    result.remove.append(self.path())
                else:
                    target = self.path()
                    tok = self.next()
                    if tok.kind != "value":
                        raise self.syntax_error(tok)
                    self.values.add(tok.text)
                    (result.add if section == "ADD" else result.delete).append((target, Value(tok.text)))
                if not self.at_op(","):
                    break
                self.next()
        return result

    def set_value(self):
        left = self.operand("update")
        tok = self.peek()
        if tok.kind == "op" and tok.text in ("+", "-"):
            self.next()
            self.count_operator()
            return Arith(tok.text, left, self.operand("update"))
        return left

    # -- projections ----------------------------------------------------------------

    def projection(self) -> list[Path]:
        paths = [self.path()]
        while self.at_op(","):
            self.next()
            paths.append(self.path())
        return paths


@functools.lru_cache(maxsize=4096)
def parse_condition(text: str, kind: str = "ConditionExpression") -> Parsed:
    p = Parser(text, kind)
    node = p.condition()
    p.end()
    return Parsed(node, p.names, p.values)


@functools.lru_cache(maxsize=4096)
def parse_update(text: str) -> Parsed:
    p = Parser(text, "UpdateExpression")
    node = p.update()
    p.end()
    return Parsed(node, p.names, p.values)


@functools.lru_cache(maxsize=4096)
def parse_projection(text: str) -> Parsed:
    p = Parser(text, "ProjectionExpression")
    node = p.projection()
    p.end()
    return Parsed(node, p.names, p.values)
