-- Send a delivery again now: a pending one is due at once (if it is its queue's first, the
-- queue is), a delivered or failed one goes back to the end of its queue, with the same id.
-- KEYS[1] deliveries  KEYS[2] the subscription's queue  KEYS[3] due  KEYS[4] order counter
-- ARGV[1] subscription id  ARGV[2] delivery id  ARGV[3] record JSON (status pending)
-- ARGV[4] now (epoch ms)  ARGV[5] '1' if the subscription is enabled
-- Returns 0 if there is no such delivery, 1 otherwise.
local deliveries, queue, due, order = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
if not redis.call('HGET', deliveries, ARGV[2]) then return 0 end
redis.call('HSET', deliveries, ARGV[2], ARGV[3])
if not redis.call('ZSCORE', queue, ARGV[2]) then
  redis.call('ZADD', queue, redis.call('INCR', order), ARGV[2])
end
if ARGV[5] == '1' then redis.call('ZADD', due, ARGV[4], ARGV[1]) end
return 1
