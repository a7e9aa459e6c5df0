-- Send a detection a quiet period deferred (see webhook_enqueue.lua), now that the period is
-- over and the insight is still active (its resolution would have removed the entry).
-- KEYS[1] quiet  KEYS[2] deferred  KEYS[3] deferred deliveries  KEYS[4] deliveries  KEYS[5] due
-- KEYS[6] order counter  KEYS[7] subscriptions  KEYS[8] the subscription's queue
-- KEYS[9] its history
-- ARGV[1] the deferred member (subscription \31 condition \31 insight)  ARGV[2] subscription id
-- ARGV[3] now (epoch ms)
-- Returns 1 if a delivery was queued, 0 otherwise.
local quiet, deferred, records, deliveries = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local member, sub, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local at = redis.call('ZSCORE', deferred, member)
if not at or tonumber(at) > now then return 0 end
local value = redis.call('HGET', records, member)
redis.call('ZREM', deferred, member)
redis.call('HDEL', records, member)
-- Its resolution is sent as any other from now on.
redis.call('HDEL', quiet, member)
if not value or redis.call('HEXISTS', KEYS[7], sub) == 0 then return 0 end
local space = string.find(value, ' ', 1, true)
local id, record = string.sub(value, 1, space - 1), string.sub(value, space + 1)
if redis.call('HSETNX', deliveries, id, record) == 0 then return 0 end
redis.call('ZADD', KEYS[8], redis.call('INCR', KEYS[6]), id)
redis.call('ZADD', KEYS[9], now, id)
redis.call('ZADD', KEYS[5], 'NX', now, sub)
return 1
