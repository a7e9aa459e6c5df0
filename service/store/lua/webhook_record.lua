-- Store the outcome of an attempt: the delivery's record, and what its queue does next.
-- KEYS[1] deliveries  KEYS[2] the subscription's queue  KEYS[3] due  KEYS[4] subscriptions
-- ARGV[1] subscription id  ARGV[2] delivery id  ARGV[3] record JSON
-- ARGV[4] 'done' (delivered or failed: it leaves the queue) | 'retry'
-- ARGV[5] when the queue is next due (epoch ms)  ARGV[6] why the subscription is disabled, or ''
-- ARGV[7] now (RFC 3339)
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
    redis.call('HSET', subs, sub, cjson.encode(doc))
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
