"""delivery: the broker-free core of webhook delivery (see README.md).

Each module is imported on its own, so a receiver taking ``signing`` does not pull in HTTP clients:

- ``signing``   Standard Webhooks ``Secret``, ``sign``, ``build_headers``, ``verify`` (stdlib only)
- ``envelope``  ``payload``: the JSON body ``{"type", "timestamp", "data"}``
- ``outcome``   ``classify_response``: status or exception -> ``Success`` / ``RetryLater`` / ``GiveUp``
- ``schedule``  ``RetrySchedule.next_attempt``: the due time of the next attempt, or dead letter
- ``breaker``   ``CircuitBreaker`` per endpoint, ``EndpointBreakers`` for all of them
- ``errors``    the signing and verification error hierarchy
"""
