"""Amazon SES, v1 (botocore ``ses``, query protocol) and v2 (``sesv2``, rest-json), over
one account model, with every message delivered to unkai's local mailbox.

- ``service.py``: v1's operations, and ``SesBase`` (what both APIs share)
- ``sesv2.py``: v2's operations
- ``identities.py``: the model: tables, identities and verification, the account
  (sandbox, quotas, suppression list), configuration sets and event destinations
- ``sending.py``: the one send path (checks, the mailbox, the send log, the feedback job)
- ``feedback.py``: notifications and events after a send; the mailbox simulator
- ``templates.py``: templates and SES's Handlebars rendering
- ``pages.py``: the verification link under ``/_unkai/ses/``
- ``receiving.py``: receipt rule sets and rules, and running their actions
- ``contacts.py``: v2 list management (contact lists, topics, contacts)
- ``tracking.py``: open and click tracking, the unsubscribe link and their public routes
- ``resources.py``: ``AWS::SES::*`` template resources
- ``errors.py``: every error with AWS's code and message
"""

from unkai.services.ses.service import SES
from unkai.services.ses.sesv2 import SESv2

SERVICES = [SES, SESv2]
