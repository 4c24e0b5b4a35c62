"""The web dashboard at ``http://127.0.0.1:PORT/_unkai/``, served by unkai itself.

Server-rendered pages with a small script (no build step, no CDN, nothing downloaded at
run time), live over Server-Sent Events from the one event feed (``unkai/feed.py``).
Everything is read and changed through the services' own operations and contracts.

| module | what it holds |
|---|---|
| ``routes.py`` | the routes, who may call them (the control plane's rules), login cookie, static files |
| ``html.py`` | the layout, escaping, tables; the pages' Content-Security-Policy |
| ``live.py`` | the feed as Server-Sent Events, batched and bounded |
| ``reads.py`` | in-process API calls every view uses (``cloud.call``), env-var masking |
| ``overview.py`` | 1: stacks, resources, outputs, health, clock, recent failures |
| ``flow.py`` | 2: the stack's graph from template and configuration; traces by X-Ray root |
| ``functions.py`` | 3: configuration, invocations, live logs, invoke with a sample event |
| ``messaging.py`` | 4: queues (depth, peek, send, DLQ redrive) and topics (subscriptions) |
| ``tables.py`` | 5: scan, query by key or index, item editor, stream records |
| ``buckets.py`` | 6: prefixes, download, upload (drag and drop), website URL |
| ``mail.py`` | 7: the mailbox (sandboxed HTML) and the webhook inbox |
| ``apis.py`` | 8: REST, HTTP and WebSocket APIs' routes and integrations, a request runner |
| ``metrics.py`` | 9: CloudWatch alarms and metric charts |
| ``static/`` | ``dashboard.js`` and ``dashboard.css`` |
"""
