"""AWS IoT Core: the control plane (``iot``) and the data plane (``iot-data``), one package.

| module | what it holds |
|---|---|
| `service.py` | `IoT`, the control plane's class, put together from the mixins below; DescribeEndpoint |
| `registry.py` | things, thing types, static thing groups, tags |
| `security.py` | certificates, CA certificates, policies and versions, attachments, policy evaluation |
| `certificates.py` | the local CA in `<state>/iot/`, issuing and reading X.509 certificates |
| `jobs.py` | jobs (simple form) and `JobsData`, the `iot-jobs-data` API devices use, with the jobs notify topics |
| `rules.py` | topic-rule operations and the rules engine with its actions |
| `sql.py` | AWS IoT SQL: parser, evaluation, substitution templates |
| `data.py` | `IoTData`: Publish, retained messages, device shadows |
| `shadows.py` | shadow documents: desired/reported/delta, versions, metadata |
| `authorizers.py` | custom authorizers: their operations, TestInvokeAuthorizer, the Lambda call the broker shares |
| `broker.py` | the MQTT broker (TLS with client certificates), policy enforcement, presence events |
| `mqtt5.py` | MQTT 5 translated to and from amqtt's 3.1.1 |
| `properties.py` | MQTT 5 message properties (user properties, content type, expiry...) on every path |
| `https.py` | the device HTTPS endpoint (the IoT HTTP protocol) |
| `model.py` | the tables both front ends share |
| `errors.py` | every error with AWS's wording |
| `resources.py` | `AWS::IoT::*` template resources |

Job templates, provisioning templates, Device Defender and domain configurations answer 501
(docs/iot.md).
"""

from unkai.services.iot.data import IoTData
from unkai.services.iot.jobs import JobsData
from unkai.services.iot.service import IoT

SERVICES = [IoT, IoTData, JobsData]
