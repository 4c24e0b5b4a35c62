"""Amazon EventBridge Scheduler."""

from unkai.services.scheduler.service import Scheduler

SERVICES = [Scheduler]
