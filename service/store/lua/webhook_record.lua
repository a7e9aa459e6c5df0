-- Store the outcome of an attempt: the delivery's record, and what its queue does next.
-- KEYS[1] deliveries  KEYS[2] the subscription's queue  KEYS[3] due  KEYS[4] subscriptions
-- KEYS[5..10] the tenant's insights, feed, active set, change sequence, active feed, and
--             webhook outbox: where the insight saying a subscription was disabled goes
-- ARGV[1] subscription id  ARGV[2] delivery id  ARGV[3] record JSON
-- ARGV[4] 'done' (delivered or failed: it leaves the queue) | 'retry'
-- ARGV[5] when the queue is next due (epoch ms)  ARGV[6] why the subscription is disabled, or ''
-- ARGV[7] now (RFC 3339)  ARGV[8] now (epoch ms)
-- ARGV[9] the insight to open when disabling (JSON, without its sequence)  ARGV[10] the
--         invalidation channel (API processes drop their copy of the feed's first page)
-- Returns 0 if the delivery left the queue meanwhile (nothing stored), 1 stored, 2 stored and
-- the subscription disabled.
local deliveries, queue, due, subs = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local sub, id = ARGV[1], ARGV[2]
if not redis.call('ZSCORE', queue, id) then return 0 end
redis.call('HSET', deliveries, id, ARGV[3])
if ARGV[4] == 'done' then redis.call('ZREM', queue, id) end
if ARGV[6] ~= '' then
  local raw = redis.call('HGET', subs, sub)
  if raw then
    local doc = cjson.decode(raw)
    doc['enabled'] = false
    doc['disabled_reason'] = ARGV[6]
    doc['disabled_at'] = ARGV[7]
    -- An insight says so, in the same step: active until the subscription is enabled again.
    -- It is in no evaluation's open conditions, so no evaluation resolves it.
    local insight = cjson.decode(ARGV[9])
    local n = redis.call('INCR', KEYS[8])
    insight['sequence'] = n
    insight['updated_at_ms'] = tonumber(ARGV[8])
    redis.call('HSET', KEYS[5], insight['id'], cjson.encode(insight))
    redis.call('ZADD', KEYS[6], n, insight['id'])
    redis.call('SADD', KEYS[7], insight['id'])
    redis.call('ZADD', KEYS[9], n, insight['id'])
    redis.call('RPUSH', KEYS[10], cjson.encode({event = 'insight.detected',
      condition = 'webhook-disabled\31' .. sub, sequence = n, at_ms = tonumber(ARGV[8]),
      insight = insight}))
    doc['disabled_insight_id'] = insight['id']
    redis.call('HSET', subs, sub, cjson.encode(doc))
    redis.call('PUBLISH', ARGV[10], KEYS[5])
  end
  redis.call('ZREM', due, sub)
  return 2
end
local raw = redis.call('HGET', subs, sub)
if redis.call('ZCARD', queue) == 0 or not raw or not cjson.decode(raw)['enabled'] then
  redis.call('ZREM', due, sub)  -- nothing left, or disabled while this attempt ran
else
  redis.call('ZADD', due, ARGV[5], sub)
end
return 1
