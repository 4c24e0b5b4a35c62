"""unkai: a local AWS serverless cloud that runs SAM templates on one machine."""

__version__ = "0.1.0"
