from unkai.services.logs.service import Logs

SERVICES = [Logs]
