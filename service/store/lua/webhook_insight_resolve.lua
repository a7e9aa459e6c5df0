-- Resolve the insight that said a webhook subscription was disabled (it is enabled again),
-- as apply_insights.lua resolves one: the next change sequence, out of the active indexes,
-- into the resolved one (which retention reads), and to the webhook outbox.
-- KEYS[1] insights  KEYS[2] feed  KEYS[3] active set  KEYS[4] change sequence
-- KEYS[5] active feed  KEYS[6] resolved (zset id -> epoch ms)  KEYS[7] webhook outbox
-- KEYS[8] webhook subscriptions
-- ARGV[1] insight id  ARGV[2] now (RFC 3339)  ARGV[3] now (epoch ms)  ARGV[4] channel
-- Returns 1 if resolved, 0 if it was not active.
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local doc = cjson.decode(raw)
if doc['state'] ~= 'active' then return 0 end
local n = redis.call('INCR', KEYS[4])
doc['state'] = 'resolved'
doc['resolved_at'] = ARGV[2]
doc['updated_at'] = ARGV[2]
doc['updated_at_ms'] = tonumber(ARGV[3])
doc['sequence'] = n
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(doc))
redis.call('ZADD', KEYS[2], n, ARGV[1])
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
redis.call('ZADD', KEYS[6], tonumber(ARGV[3]), ARGV[1])
if redis.call('HLEN', KEYS[8]) > 0 then
  redis.call('RPUSH', KEYS[7], cjson.encode({event = 'insight.resolved',
    condition = 'webhook-disabled\31' .. doc['webhook_id'], sequence = n,
    at_ms = tonumber(ARGV[3]), insight = doc}))
end
redis.call('PUBLISH', ARGV[4], KEYS[1])
return 1
