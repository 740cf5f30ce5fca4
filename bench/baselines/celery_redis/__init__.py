"""The Celery + Redis design (one task per delivery) that hookstream replaces, rebuilt minimally as a baseline.

The publishing side (``enqueue``) turns each event into one task per subscribed endpoint, the
way that design's API did; a Celery worker (default prefork pool) runs each task: build the body
(``delivery.envelope.payload``), sign it (``delivery.signing.build_headers``, the same Standard
Webhooks headers hookstream sends), POST it with a pooled ``httpx.Client`` (one per worker
process, keep-alive), and retry a failure with Celery's own ``retry`` on hookstream's schedule.

Not part of hookstream: only ``hookstream bench`` uses it, to measure hookstream against the
design it replaces on the same machine in the same run. See ``tasks.py``.
"""
