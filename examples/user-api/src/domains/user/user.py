"""The user domain: what creating a user means. A user gets a new uuid4, is created
in the authentication repository (Cognito) and then in the user repository
(DynamoDB); how either is done is the infrastructures' business."""

import uuid


class CreateUser:
    def __init__(self, email, company, display_user_name, user_level):
        self.user_uuid = str(uuid.uuid4())
        self.email = email
        self.company = company
        self.display_user_name = display_user_name
        self.user_level = user_level

    def insert(self):
        import infrastructures.user.auth_repository as auth_repository
        import infrastructures.user.user_repository as user_repository

        auth_repository.admin_create_user(self.user_uuid, self.email)
        user_repository.create(self)

    def as_dict(self):
        return {"user_uuid": self.user_uuid, "email": self.email, "company": self.company,
                "display_user_name": self.display_user_name, "user_level": self.user_level}
