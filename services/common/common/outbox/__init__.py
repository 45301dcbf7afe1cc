"""The transactional outbox (schema ``eventing``), by what each part does:

* ``writer``: ``add_event`` stores an event in the transaction of the state it announces;
* ``relay``: ``relay`` and ``publish_committed`` publish unsent rows;
* ``admin``: health, parked rows, requeueing, pruning (the relay's housekeeping and
  ``orderflow outbox``);
* ``tables``: the table.

The consumers' record of handled events is apart, in ``common.inbox``.

A service writes its event row with ``add_event`` on the same connection, in the
same transaction, as the state the event announces. ``relay`` publishes rows that
are still unsent, in three steps, so that no transaction is open across PutEvents:

1. claim: one short transaction sets ``claimed_until`` (a lease) on due rows,
   picked with ``FOR UPDATE SKIP LOCKED``, so any number of relays (and the fast
   path right after a commit) never hold one row at the same time;
2. PutEvents, with no transaction open, bounded by the invocation's time left;
3. mark: a second short transaction records each row's outcome.

A crash (or timeout) between 2 and 3 leaves the row unmarked: once its lease ends
it is published again. Delivery is at least once; every consumer is idempotent on
``metadata.eventId``.

A function that publishes its own rows right after its commit (``publish_committed``)
needs no claim transaction: ``add_event(..., lease=True)`` writes the row already
leased to its writer (``FAST_PATH_LEASE``), and the writer keeps the entry in memory,
so the fast path is PutEvents and then the mark, nothing more. Relays leave a leased
row alone; if the writer never publishes it (a crash, no time left), the lease ends
and the next relay run does.

What happens to a row that was not published:

* the call failed as a whole (network, timeout, throttling, 5xx, or refused as a
  whole: access denied, bus not found): the row is released at once with no backoff
  (the fault is not the row's) and the run stops; the next run (a minute later)
  tries again, oldest first, so an outage delays no row beyond the outage itself;
* EventBridge refused the entry with a transient code (``ThrottlingException``,
  ``InternalFailure``, anything unknown): the row backs off (``next_attempt_at``,
  exponential, capped at ``BACKOFF_CAP``, jittered) and the run goes on;
* refused for a permanent reason (too large, malformed; see ``common.failures``): the row
  is *parked* with its reason. It is never retried until an operator requeues it
  (``orderflow outbox requeue``, or ``requeue_parked`` below, or in SQL:
  ``UPDATE eventing.outbox SET parked_at = NULL, parked_reason = NULL,
  next_attempt_at = now() WHERE id = ...``).
"""
