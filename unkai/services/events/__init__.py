"""Amazon EventBridge: rules, schedules, event patterns and target delivery (shared
with EventBridge Scheduler)."""

from unkai.services.events.service import Events

SERVICES = [Events]
