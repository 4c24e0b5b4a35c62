from unkai.services.awslambda.service import InvokeResult, Lambda

SERVICES = [Lambda]

__all__ = ["InvokeResult", "Lambda", "SERVICES"]
