"""A bounded memory of X-GitHub-Delivery ids: a redelivery keeps its id, so a repeat is dropped."""

from __future__ import annotations

from collections import OrderedDict


class DeliveryLog:
    """Least-recently-seen eviction once `capacity` ids are held."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._seen: OrderedDict[str, None] = OrderedDict()

    def first_time(self, delivery_id: str) -> bool:
        """Record the id; True if it had not been seen (within the window)."""
        if delivery_id in self._seen:
            self._seen.move_to_end(delivery_id)
            return False
        self._seen[delivery_id] = None
        if len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
        return True

    def forget(self, delivery_id: str) -> None:
        """Drop an id so that a redelivery is processed (used when accepting the delivery failed)."""
        self._seen.pop(delivery_id, None)

    def __len__(self) -> int:
        return len(self._seen)
