"""The seed's delivery design, rebuilt minimally as a baseline: Celery on Redis, one task per delivery.

The publishing side (``enqueue``) turns each event into one task per subscribed endpoint, the
way the seed's API did; a Celery worker (default prefork pool) runs each task: build the body
(``delivery.envelope.payload``), sign it (``delivery.signing.build_headers``, the same Standard
Webhooks headers hookstream sends), POST it with a pooled ``httpx.Client`` (one per worker
process, keep-alive), and retry a failure with Celery's own ``retry`` on hookstream's schedule.

Not part of hookstream: only ``hookstream bench`` uses it, to measure hookstream against the
design it replaces on the same machine in the same run. See ``tasks.py``.
"""
