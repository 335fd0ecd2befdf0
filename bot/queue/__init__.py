"""Where accepted work lives until it is done: the job queue (huey), the journal of accepted jobs, delivery
dedup, per-pull-request leases, and small caches — in an embedded SQLite file (one replica, durable in
`VRAM_CHECK_STATE_DIR`) or in Redis (`VRAM_CHECK_REDIS_URL`, shared by several replicas).

See docs/queue.md for why huey, and for the at-least-once contract the journal adds on top of it.
"""
