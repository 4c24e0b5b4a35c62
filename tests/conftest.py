"""Every test talks to a real unkai server through real clients."""

import os

pytest_plugins = ["unkai.testing"]

# The suite starts a hundred-odd `unkai up` processes: let them cache bytecode even where the
# environment turns that off (CI's does), instead of compiling unkai's modules at every start.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
