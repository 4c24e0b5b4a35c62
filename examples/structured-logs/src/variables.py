"""Settings the functions read from their environment (the talk's ``variables`` module)."""

import os


def get_commit_id() -> str:
    """The commit the deployed code was built from (the template's CommitId parameter)."""
    return os.environ.get("COMMIT_ID", "000000000")


def get_log_stream_name() -> str:
    """The Kinesis stream every structured log record is also put into."""
    return os.environ.get("LOG_STREAM_NAME", "")
