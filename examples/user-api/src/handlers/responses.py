"""The API's answers: one shape for every status."""

import json


def _response(status, body):
    return {"statusCode": status, "headers": {"Content-Type": "application/json"},
            "body": json.dumps(body, ensure_ascii=False)}


def created_response(user):
    return _response(201, user)


def invalid_request_response(error):
    return _response(400, {"message": f"invalid request: {error}"})


def conflict_response(error):
    return _response(409, {"message": str(error)})


def server_error(error):
    return _response(500, {"message": "internal server error"})
