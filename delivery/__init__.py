"""delivery: the broker-free core of webhook delivery (see README.md).

Each module is imported on its own, so a receiver taking ``signing`` does not pull in HTTP clients:

- ``signing``   Standard Webhooks ``Secret``, ``sign``, ``build_headers``, ``verify`` (stdlib only)
- ``envelope``  ``payload``: the JSON body ``{"type", "timestamp", "data"}``
- ``outcome``   ``classify_response``: status or exception -> ``Success`` / ``RetryLater`` / ``GiveUp``
- ``schedule``  ``RetrySchedule.next_attempt``: the due time of the next attempt, or dead letter
- ``breaker``   ``CircuitBreaker`` per endpoint, ``EndpointBreakers`` for all of them
- ``errors``    the signing and verification errors; ``TransportFailure`` and its kinds (timeout,
                unreachable, TLS, protocol): what an attempt can fail with
- ``tiers``     ``choose_tier``: the retry tier topic for a delay
- ``offsets``   ``PartitionOffsets``: the offset a partition may commit

The delivery worker, on top of the core (these do I/O):

- ``transport``   ``Transport``, ``MockTransport``, ``PyreqwestTransport`` (SSRF-pinned clients);
                  ``translate_error``: the HTTP client's exceptions -> ``delivery.errors``
- ``attempt``     ``Deliverer``: prepare -> call -> classify -> handle, to a typed ``Decision``
- ``attempt_log`` the ``delivery_attempts`` table, its batching writer and queries
- ``metrics``     the Prometheus metrics (a contract with users' dashboards) and the worker's
                  caches of their labelled children
- ``loop``        the Kafka loop on given clients: consume, bound, pause tiers, rebalance, commit
- ``handler``     a ``Decision`` -> attempt row, retry-tier forward, dead letter; set-asides
- ``worker``      ``Worker``: the loop, the handler and the caches assembled
- ``cli``         ``hookstream delivery worker``, ``hookstream deliveries list|show``
"""
