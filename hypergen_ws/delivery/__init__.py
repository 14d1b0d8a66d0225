"""The delivery layer: the per-process hub, per-socket outboxes, ordered feeds, the publish path, counters."""
