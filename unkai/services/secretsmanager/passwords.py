"""Random passwords as GetRandomPassword and GenerateSecretString make them."""

from __future__ import annotations

import secrets
import string
from typing import Any

from unkai.services.secretsmanager import errors

PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"


def random_password(params: dict[str, Any]) -> str:
    length = params.get("PasswordLength") or 32
    if not 1 <= length <= 4096:
        raise errors.invalid_parameter("Password length must be between 1 and 4096.")
    excluded = set(params.get("ExcludeCharacters") or "")
    classes = []
    if not params.get("ExcludeLowercase"):
        classes.append(string.ascii_lowercase)
    if not params.get("ExcludeUppercase"):
        classes.append(string.ascii_uppercase)
    if not params.get("ExcludeNumbers"):
        classes.append(string.digits)
    if not params.get("ExcludePunctuation"):
        classes.append(PUNCTUATION)
    if params.get("IncludeSpace"):
        classes.append(" ")
    classes = ["".join(c for c in cls if c not in excluded) for cls in classes]
    classes = [c for c in classes if c]
    alphabet = "".join(classes)
    if not alphabet:
        raise errors.invalid_parameter("The password can't be generated: every character is excluded.")
    require = params.get("RequireEachIncludedType", True)
    if require and length < len(classes):
        raise errors.invalid_parameter("Password length is too short based on the required types.")
    while True:
        chars = [secrets.choice(alphabet) for _ in range(length)]
        if not require or all(any(ch in cls for ch in chars) for cls in classes):
            return "".join(chars)
