"""Webhook subscriptions and their deliveries in Redis (the rules live in service.core).

Per tenant, under its hash tag: the subscriptions (``keys.webhooks``), the outbox of insight
transitions apply_insights.lua appends in the same step as the transition, the deliveries
(``keys.webhook_deliveries``), one queue and one history per subscription, and the due index
the notifier reads. Every change of a queue is one Lua call (store/lua/webhook_*.lua).

Why the outbox and a second step, instead of deliveries made inside apply_insights.lua: the
evaluation's script would have to decode every subscription and match its filters for every
transition, and take each subscription's queue as a key it cannot know before reading the
subscriptions. The outbox entry is the durable record of the transition; turning it into
deliveries (``fan_out``) is one atomic call per entry that pops it only if it is still the
head, with delivery ids derived from subscription and transition, so running it twice, or on
two notifiers at once, makes each delivery once.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
import redis

from service.store import keys
from service.store.scripts import script

MAX_SUBSCRIPTIONS = 20  # per tenant: each costs the notifier a due check and a queue
HISTORY_KEPT = 200  # deliveries listed per subscription (queued ones are always kept)
ATTEMPTS_KEPT = 20  # attempts kept in a delivery's record (the count goes on)
OUTBOX_PER_PASS = 100  # outbox entries turned into deliveries per tenant and pass
COUNTS_LIFE_SECONDS = 3 * 86400  # a day's counts outlive the day for its digest


SEPARATOR = "\x1f"  # between the parts of a quiet-period mark (the Lua scripts' '\31')


class SubscriptionLimit(Exception):
    pass


def _json(value: Any) -> bytes:
    return orjson.dumps(value)


# -- subscriptions -------------------------------------------------------------------------------


def new_subscription_id() -> str:
    return "wh_" + uuid.uuid4().hex


def _save(client: redis.Redis, tenant: str, doc: dict[str, Any], mode: str, now_ms: int) -> int:
    sub = doc["id"]
    return int(script(client, "webhook_save")(
        keys=[keys.webhooks(tenant), keys.webhook_due(tenant), keys.webhook_queue(tenant, sub)],
        args=[sub, _json(doc), mode, MAX_SUBSCRIPTIONS, now_ms, "1" if doc["enabled"] else "0"],
    ))  # fmt: skip


def create_subscription(client: redis.Redis, tenant: str, doc: dict[str, Any], now_ms: int) -> None:
    """Store a new subscription; SubscriptionLimit past MAX_SUBSCRIPTIONS."""
    if _save(client, tenant, doc, "create", now_ms) != 1:
        raise SubscriptionLimit(f"a tenant may have at most {MAX_SUBSCRIPTIONS} webhook "
                                "subscriptions; delete one first")  # fmt: skip
    # Global, so not in the script (another slot); a tenant without subscriptions costs the
    # notifier one empty read, so it is never removed.
    client.sadd(keys.webhook_tenants(), tenant)


def replace_subscription(
    client: redis.Redis, tenant: str, doc: dict[str, Any], now_ms: int
) -> bool:
    """Store ``doc`` over the subscription of its id; False if there is none."""
    return _save(client, tenant, doc, "update", now_ms) == 1


def get_subscription(client: redis.Redis, tenant: str, sub: str) -> dict[str, Any] | None:
    raw = client.hget(keys.webhooks(tenant), sub)
    return orjson.loads(raw) if raw is not None else None


def list_subscriptions(client: redis.Redis, tenant: str) -> list[dict[str, Any]]:
    docs = [orjson.loads(raw) for raw in client.hvals(keys.webhooks(tenant))]
    return sorted(docs, key=lambda d: (d["created_at"], d["id"]))


def delete_subscription(client: redis.Redis, tenant: str, sub: str) -> bool:
    """Delete a subscription, its queue, history and deliveries; False if there is none.
    The subscription goes first (nothing new is queued for it), then its deliveries in steps
    of bounded size."""
    pipe = client.pipeline(transaction=True)
    pipe.hdel(keys.webhooks(tenant), sub)
    pipe.zrem(keys.webhook_due(tenant), sub)
    removed, _ = pipe.execute()
    if not removed:
        return False
    for index in (keys.webhook_queue(tenant, sub), keys.webhook_history(tenant, sub)):
        while True:
            ids = client.zrange(index, 0, 499)
            if not ids:
                break
            pipe = client.pipeline(transaction=True)
            pipe.hdel(keys.webhook_deliveries(tenant), *ids)
            pipe.zrem(index, *ids)
            pipe.execute()
    _forget_quiet_marks(client, tenant, sub)
    return True


def _forget_quiet_marks(client: redis.Redis, tenant: str, sub: str) -> None:
    """The subscription's quiet-period marks and deferred detections (their names start with
    the subscription id and SEPARATOR), in bounded steps."""
    for name in (keys.webhook_quiet(tenant), keys.webhook_deferred_deliveries(tenant)):
        cursor = 0
        while True:
            cursor, fields = client.hscan(name, cursor, match=f"{sub}{SEPARATOR}*", count=500)
            if fields:
                client.hdel(name, *fields)
                if name == keys.webhook_deferred_deliveries(tenant):
                    client.zrem(keys.webhook_deferred(tenant), *fields)
            if cursor == 0:
                break


def webhook_tenants(client: redis.Redis) -> list[str]:
    return sorted(t.decode() for t in client.smembers(keys.webhook_tenants()))


# -- deliveries ----------------------------------------------------------------------------------


def delivery_id(sub: str, insight_id: str, event: str) -> str:
    """The ``webhook-id`` of an insight event to a subscription: the same however often the
    transition is fanned out, so a repeated fan-out finds the delivery already made."""
    digest = hashlib.sha256(f"{sub}\x1f{insight_id}\x1f{event}".encode()).hexdigest()
    return "msg_" + digest[:32]


@dataclass(frozen=True)
class Planned:
    """One delivery to make: its subscription, id and record, and what noise control needs."""

    subscription: str
    delivery_id: str
    record: dict[str, Any]
    condition: str = ""
    insight_id: str = ""

    @property
    def event(self) -> str:
        return str(self.record["event"])


@dataclass(frozen=True)
class NoiseControl:
    daily_cap: int  # 0: none
    quiet_ms: int  # 0: none
    day: str  # the UTC day the counts go to


def outbox_head(client: redis.Redis, tenant: str, count: int) -> list[bytes]:
    return list(client.lrange(keys.webhook_outbox(tenant), 0, count - 1))


def enqueue(
    client: redis.Redis,
    tenant: str,
    outbox_entry: bytes | None,
    planned: Iterable[Planned],
    now_ms: int,
    noise: NoiseControl,
) -> int:
    """Make the ``planned`` deliveries and pop ``outbox_entry`` (if given) in one call; the
    deliveries made, or -1 if the entry was no longer the outbox's head (another notifier
    fanned it out)."""
    planned = list(planned)
    key_names = [keys.webhook_outbox(tenant), keys.webhook_deliveries(tenant),
                 keys.webhook_due(tenant), keys.webhook_order(tenant),
                 keys.webhook_quiet(tenant), keys.webhook_deferred(tenant),
                 keys.webhook_deferred_deliveries(tenant)]  # fmt: skip
    argv: list[object] = [outbox_entry or b"", now_ms, noise.daily_cap, noise.quiet_ms,
                          COUNTS_LIFE_SECONDS, HISTORY_KEPT, len(planned)]  # fmt: skip
    for p in planned:
        key_names += [keys.webhook_queue(tenant, p.subscription),
                      keys.webhook_history(tenant, p.subscription),
                      keys.webhook_counts(tenant, p.subscription, noise.day)]  # fmt: skip
        argv += [p.subscription, p.delivery_id, _json(p.record), p.condition, p.insight_id,
                 p.event]  # fmt: skip
    return int(script(client, "webhook_enqueue")(keys=key_names, args=argv))


def pause(client: redis.Redis, tenant: str, sub: str) -> None:
    """Take a disabled (or deleted) subscription out of the due index: its queue waits."""
    client.zrem(keys.webhook_due(tenant), sub)


def queued(client: redis.Redis, tenant: str, sub: str) -> int:
    return int(client.zcard(keys.webhook_queue(tenant, sub)))


def release_deferred(client: redis.Redis, tenant: str, now_ms: int, limit: int) -> int:
    """Queue the detections whose quiet period is over (at most ``limit``); how many."""
    members = client.zrangebyscore(keys.webhook_deferred(tenant), "-inf", now_ms, start=0,
                                   num=limit)  # fmt: skip
    released = 0
    for member in members:
        sub = member.decode().split(SEPARATOR, 1)[0]
        released += int(script(client, "webhook_release")(
            keys=[keys.webhook_quiet(tenant), keys.webhook_deferred(tenant),
                  keys.webhook_deferred_deliveries(tenant), keys.webhook_deliveries(tenant),
                  keys.webhook_due(tenant), keys.webhook_order(tenant), keys.webhooks(tenant),
                  keys.webhook_queue(tenant, sub), keys.webhook_history(tenant, sub)],
            args=[member, sub, now_ms],
        ))  # fmt: skip
    return released


def due_subscriptions(client: redis.Redis, tenant: str, now_ms: int, limit: int) -> list[str]:
    return [s.decode() for s in client.zrangebyscore(keys.webhook_due(tenant), "-inf", now_ms,
                                                     start=0, num=limit)]  # fmt: skip


def claim(
    client: redis.Redis, tenant: str, sub: str, now_ms: int, lease_ms: int
) -> tuple[str, dict[str, Any]] | None:
    """The first delivery of ``sub``'s queue if it is due, leased to the caller."""
    reply = script(client, "webhook_claim")(
        keys=[keys.webhook_due(tenant), keys.webhook_queue(tenant, sub),
              keys.webhook_deliveries(tenant)],
        args=[sub, now_ms, now_ms + lease_ms],
    )  # fmt: skip
    if not reply:
        return None
    return reply[0].decode(), orjson.loads(reply[1])


def _insight_keys(tenant: str) -> list[str]:
    return [keys.insights(tenant), keys.insight_feed(tenant), keys.active_insights(tenant),
            keys.insight_sequence(tenant), keys.insight_active_feed(tenant)]  # fmt: skip


def record_attempt(
    client: redis.Redis,
    tenant: str,
    record: dict[str, Any],
    done: bool,
    next_due_ms: int,
    now: tuple[str, int],
    disable: tuple[str, dict[str, Any]] | None = None,
) -> int:
    """Store a delivery's record after an attempt (see webhook_record.lua for the reply);
    ``disable``: why the subscription is disabled, and the insight that says so."""
    sub = record["subscription_id"]
    record["attempts"] = record["attempts"][-ATTEMPTS_KEPT:]
    reason, insight = disable or ("", {})
    return int(script(client, "webhook_record")(
        keys=[keys.webhook_deliveries(tenant), keys.webhook_queue(tenant, sub),
              keys.webhook_due(tenant), keys.webhooks(tenant), *_insight_keys(tenant),
              keys.webhook_outbox(tenant)],
        args=[sub, record["id"], _json(record), "done" if done else "retry", next_due_ms,
              reason, now[0], now[1], _json(insight), keys.invalidation_channel()],
    ))  # fmt: skip


def resolve_disabled_insight(
    client: redis.Redis, tenant: str, insight_id: str, now_text: str, now_ms: int
) -> bool:
    """Resolve the insight that said a subscription was disabled (it is enabled again)."""
    return bool(script(client, "webhook_insight_resolve")(
        keys=[*_insight_keys(tenant), keys.insight_resolved(tenant), keys.webhook_outbox(tenant),
              keys.webhooks(tenant)],
        args=[insight_id, now_text, now_ms, keys.invalidation_channel()],
    ))  # fmt: skip


def retry_now(
    client: redis.Redis, tenant: str, record: dict[str, Any], now_ms: int, enabled: bool
) -> bool:
    sub = record["subscription_id"]
    return bool(script(client, "webhook_retry")(
        keys=[keys.webhook_deliveries(tenant), keys.webhook_queue(tenant, sub),
              keys.webhook_due(tenant), keys.webhook_order(tenant)],
        args=[sub, record["id"], _json(record), now_ms, "1" if enabled else "0"],
    ))  # fmt: skip


def get_delivery(client: redis.Redis, tenant: str, delivery: str) -> dict[str, Any] | None:
    raw = client.hget(keys.webhook_deliveries(tenant), delivery)
    return orjson.loads(raw) if raw is not None else None


def recent_deliveries(
    client: redis.Redis, tenant: str, sub: str, limit: int
) -> list[dict[str, Any]]:
    """The subscription's ``limit`` newest deliveries, newest first."""
    ids = client.zrevrange(keys.webhook_history(tenant, sub), 0, limit - 1)
    raws = client.hmget(keys.webhook_deliveries(tenant), ids) if ids else []
    return [orjson.loads(raw) for raw in raws if raw is not None]


def day_counts(client: redis.Redis, tenant: str, sub: str, day: str) -> dict[str, int]:
    raw = client.hgetall(keys.webhook_counts(tenant, sub, day))
    return {k.decode(): int(v) for k, v in raw.items()}


def mark_digest_made(client: redis.Redis, tenant: str, sub: str, day: str) -> bool:
    """True once per subscription and day: the caller makes that day's digest."""
    return bool(client.hsetnx(keys.webhook_counts(tenant, sub, day), "digest", 1))


def oldest_pending_ms(client: redis.Redis, tenant: str) -> int | None:
    """When the oldest delivery still queued was made (epoch ms), or None: the queue's age."""
    subs = [s.decode() for s in client.zrange(keys.webhook_due(tenant), 0, -1)]
    if not subs:
        return None
    pipe = client.pipeline(transaction=False)
    for sub in subs:
        pipe.zrange(keys.webhook_queue(tenant, sub), 0, 0)
    heads = pipe.execute()
    pipe = client.pipeline(transaction=False)
    for sub, head in zip(subs, heads, strict=True):
        pipe.zscore(keys.webhook_history(tenant, sub), head[0] if head else "")
    created = [int(score) for score in pipe.execute() if score is not None]
    return min(created) if created else None


def new_message_id() -> str:
    """The id of a delivery of no transition (a ping)."""
    return "msg_" + uuid.uuid4().hex
