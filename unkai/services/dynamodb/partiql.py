"""PartiQL: ExecuteStatement, BatchExecuteStatement and ExecuteTransaction for
SELECT, INSERT, UPDATE and DELETE.

Statements are parsed into the same forms the expression language produces (literal
values become placeholders in an Env), so conditions and updates are evaluated by
the one evaluator. A SELECT whose WHERE fixes the partition key reads that
partition only; any other SELECT scans, as on AWS.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from typing import Any

from unkai.protocol import ServiceError
from unkai.services import RequestContext
from unkai.services.dynamodb import attributes, numbers
from unkai.services.dynamodb.attributes import Item, check_value
from unkai.services.dynamodb.errors import condition_failed, validation
from unkai.services.dynamodb.expressions import holds, project
from unkai.services.dynamodb.expressions import update as updates
from unkai.services.dynamodb.expressions.ast import (
    And, Arith, Between, Call, Compare, In, Not, Or, Parsed, Path, Update, Value,
)
from unkai.services.dynamodb.expressions.evaluate import Env
from unkai.services.dynamodb.keys import encode, partition
from unkai.services.dynamodb.query import KeyRange, conjuncts
from unkai.services.dynamodb.tables import Table

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^']|'')*')
  | (?P<ident>"(?:[^"]|"")*")
  | (?P<number>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)
  | (?P<param>\?)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><<|>>|<>|!=|<=|>=|[=<>(),.\[\]{}:+\-*])
""", re.VERBOSE)
MAX_BATCH = 25
MAX_TRANSACTION = 100


def malformed(detail: str) -> ServiceError:
    return validation(f"Statement wasn't well formed, can't be processed: {detail}")


@dataclass
class Statement:
    kind: str  # SELECT, INSERT, UPDATE, DELETE
    table: str
    index: str | None = None
    projection: list[tuple] | None = None
    where: Any = None
    item: Item | None = None
    update: Update = field(default_factory=Update)
    returning: str | None = None


class Parser:
    """Recursive descent over PartiQL's tokens; literals become Env placeholders."""

    def __init__(self, text: str, parameters: list[dict] | None, env: Env) -> None:
        self.text = text
        self.env = env
        self.parameters = [check_value(p) for p in parameters or []]
        self.used_parameters = 0
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None:
                raise malformed(f"Unexpected character: {text[pos]!r}")
            if m.lastgroup != "ws":
                self.tokens.append((m.lastgroup, m.group()))
            pos = m.end()
        self.tokens.append(("eof", ""))
        self.i = 0

    def peek(self, ahead: int = 0) -> tuple[str, str]:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def next(self) -> tuple[str, str]:
        tok = self.tokens[self.i]
        if tok[0] != "eof":
            self.i += 1
        return tok

    def at(self, word: str) -> bool:
        kind, text = self.peek()
        return (kind == "word" and text.upper() == word) or (kind == "op" and text == word)

    def expect(self, word: str) -> None:
        if not self.at(word):
            kind, text = self.peek()
            raise malformed(f"Unexpected {'end of statement' if kind == 'eof' else 'token ' + repr(text)}, "
                            f"expected {word}")
        self.next()

    def value_ref(self, value: dict) -> Value:
        name = f":p{len(self.env.values)}"
        self.env.values[name] = value
        self.env.used_values.add(name)
        return Value(name)

    # -- statements -----------------------------------------------------------------

    def statement(self) -> Statement:
        kind, word = self.next()
        word = word.upper()
        if word == "SELECT":
            stmt = self.select()
        elif word == "INSERT":
            stmt = self.insert()
        elif word == "UPDATE":
            stmt = self.update()
        elif word == "DELETE":
            stmt = self.delete()
        else:
            raise malformed(f"Unexpected keyword {word or 'end of statement'}; expected SELECT, INSERT, UPDATE "
                            "or DELETE")
        if self.peek()[0] != "eof":
            raise malformed(f"Unexpected token {self.peek()[1]!r}")
        if self.used_parameters != len(self.parameters):
            raise validation("Number of parameters in request and statement don't match.")
        return stmt

    def table_name(self) -> tuple[str, str | None]:
        name = self.identifier()
        index = None
        if self.at("."):
            self.next()
            index = self.identifier()
        return name, index

    def identifier(self) -> str:
        kind, text = self.next()
        if kind == "ident":
            return text[1:-1].replace('""', '"')
        if kind == "word":
            return text
        raise malformed(f"Expected an identifier, found {text!r}")

    def select(self) -> Statement:
        projection = None
        if self.at("*"):
            self.next()
        else:
            projection = [self.path_elements()]
            while self.at(","):
                self.next()
                projection.append(self.path_elements())
        self.expect("FROM")
        table, index = self.table_name()
        where = self.where() if self.at("WHERE") else None
        return Statement("SELECT", table, index, projection, where)

    def insert(self) -> Statement:
        self.expect("INTO")
        table, _ = self.table_name()
        self.expect("VALUE")
        value = self.literal()
        if "M" not in value:
            raise malformed("INSERT needs a tuple value ({...}) after VALUE")
        return Statement("INSERT", table, item=value["M"])

    def update(self) -> Statement:
        table, _ = self.table_name()
        stmt = Statement("UPDATE", table)
        if not (self.at("SET") or self.at("REMOVE")):
            raise malformed("UPDATE needs SET or REMOVE")
        while self.at("SET") or self.at("REMOVE"):
            clause = self.next()[1].upper()
            while True:
                path = Path(self.path_elements())
                if clause == "REMOVE":
                    stmt.update.remove.append(path)
                else:
                    self.expect("=")
                    self.set_value(stmt.update, path)
                if not self.at(","):
                    break
                self.next()
        stmt.where = self.where()
        stmt.returning = self.returning()
        return stmt

    def set_value(self, update: Update, path: Path) -> None:
        kind, text = self.peek()
        if kind == "word" and text.lower() in ("set_add", "set_delete") and self.peek(1) == ("op", "("):
            self.next()
            self.expect("(")
            target = Path(self.path_elements())
            if target != path:
                raise malformed(f"{text} must update the attribute it reads")
            self.expect(",")
            value = self.operand()
            self.expect(")")
            (update.add if text.lower() == "set_add" else update.delete).append((path, value))
            return
        left = self.operand(update_context=True)
        if self.at("+") or self.at("-"):
            op = self.next()[1]
            left = Arith(op, left, self.operand(update_context=True))
        update.set.append((path, left))

    def delete(self) -> Statement:
        self.expect("FROM")
        table, _ = self.table_name()
        stmt = Statement("DELETE", table)
        stmt.where = self.where()
        stmt.returning = self.returning()
        return stmt

    def returning(self) -> str | None:
        if not self.at("RETURNING"):
            return None
        self.next()
        words = [self.next()[1].upper() for _ in range(2)]
        self.expect("*")
        what = " ".join(words)
        if what not in ("ALL OLD", "ALL NEW", "MODIFIED OLD", "MODIFIED NEW"):
            raise malformed(f"Unsupported RETURNING {what}")
        return what

    # -- conditions -----------------------------------------------------------------

    def where(self) -> Any:
        self.expect("WHERE")
        return self.disjunction()

    def disjunction(self) -> Any:
        node = self.conjunction()
        while self.at("OR"):
            self.next()
            node = Or(node, self.conjunction())
        return node

    def conjunction(self) -> Any:
        node = self.negation()
        while self.at("AND"):
            self.next()
            node = And(node, self.negation())
        return node

    def negation(self) -> Any:
        if self.at("NOT"):
            self.next()
            return Not(self.negation())
        return self.predicate()

    def predicate(self) -> Any:
        if self.at("("):
            self.next()
            node = self.disjunction()
            self.expect(")")
            return node
        kind, text = self.peek()
        if kind == "word" and text.lower() in ("begins_with", "contains", "attribute_type") and \
                self.peek(1) == ("op", "("):
            self.next()
            self.expect("(")
            target = Path(self.path_elements())
            self.expect(",")
            arg = self.operand()
            self.expect(")")
            return Call(text.lower(), (target, arg))
        left = self.operand()
        if self.at("IS"):
            self.next()
            negate = self.at("NOT")
            if negate:
                self.next()
            word = self.next()[1].upper()
            if word == "MISSING":
                node = Call("attribute_not_exists", (left,))
            elif word == "NULL":
                node = Compare("=", left, self.value_ref({"NULL": True}))
            else:
                raise malformed(f"Unexpected {word} after IS")
            return Not(node) if negate else node
        if self.at("BETWEEN"):
            self.next()
            low = self.operand()
            self.expect("AND")
            return Between(left, low, self.operand())
        if self.at("IN"):
            self.next()
            close = "]" if self.at("[") else ")"
            self.next()
            choices = [self.operand()]
            while self.at(","):
                self.next()
                choices.append(self.operand())
            self.expect(close)
            return In(left, tuple(choices))
        kind, op = self.next()
        if kind != "op" or op not in ("=", "<>", "!=", "<", "<=", ">", ">="):
            raise malformed(f"Unexpected token {op!r}, expected a comparison")
        return Compare("<>" if op == "!=" else op, left, self.operand())

    def operand(self, update_context: bool = False) -> Any:
        kind, text = self.peek()
        if kind == "word" and self.peek(1) == ("op", "("):
            name = text.lower()
            self.next()
            self.next()
            args = [self.operand(update_context)]
            while self.at(","):
                self.next()
                args.append(self.operand(update_context))
            self.expect(")")
            allowed = ("list_append", "if_not_exists") if update_context else ("size",)
            if name not in allowed:
                raise malformed(f"Unsupported function {name}")
            return Call(name, tuple(args))
        if kind in ("word", "ident") and text.upper() not in ("TRUE", "FALSE", "NULL", "MISSING"):
            return Path(self.path_elements())
        return self.value_ref(self.literal())

    def path_elements(self) -> tuple:
        elements: list = [self.identifier()]
        while True:
            if self.at("."):
                self.next()
                elements.append(self.identifier())
            elif self.at("["):
                self.next()
                kind, text = self.next()
                if kind != "number" or not text.isdigit():
                    raise malformed("A list index must be a number")
                self.expect("]")
                elements.append(int(text))
            else:
                return tuple(elements)

    # -- literals -------------------------------------------------------------------

    def literal(self) -> dict:
        kind, text = self.next()
        if kind == "param":
            if self.used_parameters >= len(self.parameters):
                raise validation("Number of parameters in request and statement don't match.")
            self.used_parameters += 1
            return self.parameters[self.used_parameters - 1]
        if kind == "string":
            return {"S": text[1:-1].replace("''", "'")}
        if kind == "number":
            return {"N": numbers.canonical(text)}
        if kind == "op" and text == "-" and self.peek()[0] == "number":
            return {"N": numbers.canonical("-" + self.next()[1])}
        if kind == "word" and text.upper() in ("TRUE", "FALSE"):
            return {"BOOL": text.upper() == "TRUE"}
        if kind == "word" and text.upper() == "NULL":
            return {"NULL": True}
        if kind == "op" and text == "{":
            members: dict = {}
            while not self.at("}"):
                key = self.literal()
                if "S" not in key:
                    raise malformed("Tuple keys must be strings")
                self.expect(":")
                members[key["S"]] = self.literal()
                if not self.at(","):
                    break
                self.next()
            self.expect("}")
            return {"M": members}
        if kind == "op" and text == "[":
            entries = []
            while not self.at("]"):
                entries.append(self.literal())
                if not self.at(","):
                    break
                self.next()
            self.expect("]")
            return {"L": entries}
        if kind == "op" and text == "<<":
            elements = []
            while not self.at(">>"):
                elements.append(self.literal())
                if not self.at(","):
                    break
                self.next()
            self.expect(">>")
            types = {attributes.type_of(e) for e in elements}
            if len(types) != 1 or not types <= {"S", "N", "B"}:
                raise malformed("A set holds strings, numbers or binary values of one type")
            t = types.pop()
            return check_value({f"{t}S": [e[t] for e in elements]})
        raise malformed(f"Unexpected {'end of statement' if kind == 'eof' else repr(text)}")


def _key_equalities(node: Any, env: Env) -> dict[str, dict]:
    """Top-level ``attribute = literal`` conjuncts."""
    found = {}
    for part in conjuncts(node) if node is not None else []:
        if isinstance(part, Compare) and part.op == "=":
            path, value = (part.left, part.right) if isinstance(part.left, Path) else (part.right, part.left)
            if isinstance(path, Path) and isinstance(value, Value) and len(path.elements) == 1:
                found.setdefault(path.elements[0], env.values[value.name])
    return found


class PartiQLOperations:
    """Mixed into the DynamoDB service."""

    store: Any
    items: Any

    def _partiql_parse(self, text: str, parameters: list | None) -> tuple[Statement, Env]:
        env = Env(None, {})
        return Parser(text, parameters, env).statement(), env

    def _key_from_where(self, table: Table, stmt: Statement, env: Env) -> tuple[Item, bytes, bytes]:
        equal = _key_equalities(stmt.where, env)
        missing = [n for n in table.schema.names if n not in equal]
        if missing:
            raise validation("Where clause does not contain a mandatory equality on all key attributes")
        key = {n: equal[n] for n in table.schema.names}
        table.schema.check_key(key)
        pk, rk = table.schema.encode(key)
        return key, pk, rk

    def _partiql_run(self, ctx: RequestContext, stmt: Statement, env: Env, params: dict) -> dict:
        table = self.table(ctx, stmt.table)
        if stmt.kind == "SELECT":
            return self._partiql_select(table, stmt, env, params)
        if stmt.kind == "INSERT":
            item, pk, rk = self.prepare_put(table, stmt.item)
            old = self.items.get(table, pk, rk)
            if old is not None:
                raise ServiceError("DuplicateItemException", "Duplicate primary key exists in table")
            self.items.write(table, table.schema.item_key(item), pk, rk, None, item)
            return {}
        key, pk, rk = self._key_from_where(table, stmt, env)
        old = self.items.get(table, pk, rk)
        on_failure = params.get("ReturnValuesOnConditionCheckFailure")
        failed = attributes.to_wire(old) if on_failure == "ALL_OLD" and old else None
        if stmt.kind == "UPDATE" and old is None:
            raise condition_failed(failed)
        if old is not None and not holds(stmt.where, old, env):
            raise condition_failed(failed)
        if old is None:
            if any(n not in table.schema.names for n in _key_equalities(stmt.where, env)) or \
                    not isinstance(stmt.where, (And, Compare)):
                raise condition_failed()
            return {}
        if stmt.kind == "UPDATE":
            updates.check(stmt.update, env, table.schema.names)
            new = self.apply_update(table, Parsed(stmt.update), env, key, old)
        else:
            new = None
        self.items.write(table, key, pk, rk, old, new)
        returning = stmt.returning
        if returning is None:
            return {}
        source = old if returning.endswith("OLD") else new
        if source is None:
            return {"Items": []}
        if returning.startswith("MODIFIED") and new is not None:
            source = project(source, updates.paths(stmt.update, env))
        return {"Items": [source]}

    def _partiql_select(self, table: Table, stmt: Statement, env: Env, params: dict) -> dict:
        index = None
        if stmt.index is not None:
            index = table.indexes.get(stmt.index)
            if index is None:
                raise validation(f"The table does not have the specified index: {stmt.index}")
        schema = index.schema if index is not None else table.schema
        equal = _key_equalities(stmt.where, env)
        hash_value = equal.get(schema.hash.name)
        start = None
        if params.get("NextToken"):
            try:
                start = tuple(bytes.fromhex(p) for p in json.loads(base64.b64decode(params["NextToken"])))
            except (ValueError, TypeError):
                raise validation("Invalid NextToken") from None
        if hash_value is not None and attributes.type_of(hash_value) == schema.hash.type:
            bounds = KeyRange()
            bounds.pk = partition(encode(hash_value))
            rows = self._query_rows(table, index, bounds, start, True)
        else:
            rows = self.scan_rows(table, index, start)
        limit = params.get("Limit")
        items, last, more = [], None, False
        for text in rows:
            if limit is not None and len(items) >= limit:
                more = True
                break
            item = attributes.loads(text)
            view = index.project(item, table.schema) if index is not None else item
            last = item
            if stmt.where is None or holds(stmt.where, view, env):
                items.append(project(view, stmt.projection) if stmt.projection else view)
        out: dict[str, Any] = {"Items": items}
        if more and last is not None:
            tpk, trk = table.schema.encode(last)
            position = (tpk, trk) if index is None else (*index.schema.encode(last), tpk, trk)
            out["NextToken"] = base64.b64encode(json.dumps([p.hex() for p in position]).encode()).decode()
            key = table.schema.item_key(last)
            if index is not None:
                key.update(index.schema.item_key(last))
            out["LastEvaluatedKey"] = key
        return out

    # -- the operations -------------------------------------------------------------

    def execute_statement(self, ctx: RequestContext, params: dict) -> dict:
        stmt, env = self._partiql_parse(params["Statement"], params.get("Parameters"))
        return self._partiql_run(ctx, stmt, env, params)

    def batch_execute_statement(self, ctx: RequestContext, params: dict) -> dict:
        statements = params["Statements"]
        if not 1 <= len(statements) <= MAX_BATCH:
            raise validation("1 validation error detected: Value at 'statements' failed to satisfy constraint: "
                             "Member must have length less than or equal to 25")
        responses = []
        for entry in statements:
            try:
                with self.store.transaction():
                    stmt, env = self._partiql_parse(entry["Statement"], entry.get("Parameters"))
                    if stmt.kind == "SELECT":
                        table = self.table(ctx, stmt.table)
                        self._key_from_where(table, stmt, env)
                    out = self._partiql_run(ctx, stmt, env, entry)
                response: dict[str, Any] = {"TableName": stmt.table}
                if stmt.kind == "SELECT" and out["Items"]:
                    response["Item"] = out["Items"][0]
                responses.append(response)
            except ServiceError as exc:
                code = exc.code.replace("Exception", "")
                error: dict[str, Any] = {"Code": code, "Message": exc.message}
                if exc.fields.get("Item"):
                    error["Item"] = attributes.from_wire(exc.fields["Item"])
                responses.append({"Error": error})
        return {"Responses": responses}

    def execute_transaction(self, ctx: RequestContext, params: dict) -> dict:
        statements = params["TransactStatements"]
        if not 1 <= len(statements) <= MAX_TRANSACTION:
            raise validation("1 validation error detected: Value at 'transactStatements' failed to satisfy "
                             "constraint: Member must have length less than or equal to 100")
        parsed = [self._partiql_parse(s["Statement"], s.get("Parameters")) for s in statements]
        kinds = {stmt.kind == "SELECT" for stmt, _ in parsed}
        if len(kinds) > 1:
            raise validation("Transaction must contain either all reads or all writes")
        responses: list[dict] = []
        reasons: list[dict] = []
        failed = False
        with self.store.transaction():
            for (stmt, env), entry in zip(parsed, statements):
                try:
                    with self.store.transaction():
                        out = self._partiql_run(ctx, stmt, env, entry)
                    reasons.append({"Code": "None"})
                    if stmt.kind == "SELECT":
                        responses.append({"Item": out["Items"][0]} if out["Items"] else {})
                except ServiceError as exc:
                    failed = True
                    code = {"ConditionalCheckFailedException": "ConditionalCheckFailed",
                            "DuplicateItemException": "DuplicateItem"}.get(exc.code, "ValidationError")
                    reasons.append({"Code": code, "Message": exc.message})
            if failed:
                codes = ", ".join(r["Code"] for r in reasons)
                raise ServiceError("TransactionCanceledException",
                                   f"Transaction cancelled, please refer cancellation reasons for specific reasons "
                                   f"[{codes}]", CancellationReasons=reasons)
        return {"Responses": responses} if responses else {}
