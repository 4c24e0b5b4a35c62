"""Settings every function reads from its environment (set by the template)."""

import os


def get_commit_id():
    return os.environ.get("COMMIT_ID", "000000000")


def get_account_id(context):
    """The account from the function's own ARN (arn:aws:lambda:region:ACCOUNT:function:name)."""
    return context.invoked_function_arn.split(":")[4]
