"""The Lambda runtime for Python: execution environments as long-lived worker
processes, forked from a per-interpreter fork server that has already imported the
SDK (``bootstrap.py`` runs under the function's interpreter; the rest runs in unkai).
"""

from unkai.runtime.environment import Environment, EnvironmentSpec, Outcome
from unkai.runtime.pool import Runtime

__all__ = ["Environment", "EnvironmentSpec", "Outcome", "Runtime"]
