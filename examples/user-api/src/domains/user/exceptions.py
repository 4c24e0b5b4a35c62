"""The domain's own errors, which the handler turns into answers."""


class UserAlreadyExistsException(Exception):
    def __init__(self, what, cause=None):
        super().__init__(f"user already exists: {what}")
        self.cause = cause
