"""Every test talks to a real unkai server through real clients."""

pytest_plugins = ["unkai.testing"]
