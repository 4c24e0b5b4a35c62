"""A task the client follows by its uuid: started, then finished with a reason."""

import infrastructures.task.task_repository as repository


class TaskManager:
    def __init__(self, task_uuid, hub_uuid):
        self.task_uuid = task_uuid
        self.hub_uuid = hub_uuid

    def start(self):
        repository.started(self.task_uuid, self.hub_uuid)

    def finish(self, reason):
        repository.finished(self.task_uuid, reason)
