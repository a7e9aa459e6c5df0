-- Turn one outbox entry (an insight transition) into deliveries, or add one delivery that has
-- no outbox entry (a ping, a digest): atomically, so it happens once whoever runs it.
-- The caller chose the matching subscriptions; the delivery ids are derived from the
-- subscription and the transition, and HSETNX keeps a delivery made before as it is.
-- KEYS[1] outbox  KEYS[2] deliveries  KEYS[3] due  KEYS[4] order counter  KEYS[5] quiet
-- KEYS[6] deferred (zset: detections held by a quiet period -> its end, epoch ms)
-- KEYS[7] their deliveries ("id record" by the same member)
--   then per delivery: KEYS its subscription's queue, history, counts of the day
-- ARGV[1] the outbox entry expected at the head ('' for none)  ARGV[2] now (epoch ms)
-- ARGV[3] daily cap (0: none)  ARGV[4] quiet period (ms, 0: none)  ARGV[5] day counts' life (s)
-- ARGV[6] history kept per subscription  ARGV[7] number of deliveries
--   then per delivery: subscription id, delivery id, record JSON, condition, insight id, event
-- Returns the deliveries made, or -1 if the outbox entry was taken already.
local outbox, deliveries, due, order, quiet = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local deferred, deferred_records = KEYS[6], KEYS[7]
local now, cap, quiet_ms = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if ARGV[1] ~= '' then
  if redis.call('LINDEX', outbox, 0) ~= ARGV[1] then return -1 end
  redis.call('LPOP', outbox)
end
local made = 0
for i = 1, tonumber(ARGV[7]) do
  local queue, history, counts = KEYS[5 + 3 * i], KEYS[6 + 3 * i], KEYS[7 + 3 * i]
  local a = 8 + 6 * (i - 1)
  local sub, id, record = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  local condition, insight, event = ARGV[a + 3], ARGV[a + 4], ARGV[a + 5]
  local send = true
  local is_insight = event == 'insight.detected' or event == 'insight.resolved'
  -- Quiet period: a condition that comes back within it after a resolution is not sent yet:
  -- its detection is deferred to the period's end (webhook_release.lua sends it then if the
  -- insight is still active); resolved before, neither is sent (the flap stays quiet).
  if is_insight and quiet_ms > 0 then
    local field, held = sub .. '\31' .. condition, sub .. '\31' .. condition .. '\31' .. insight
    if event == 'insight.detected' then
      local until_ms = redis.call('HGET', quiet, field)
      if until_ms and tonumber(until_ms) > now then
        send = false
        redis.call('HSET', quiet, held, '1')
        redis.call('ZADD', deferred, until_ms, held)
        redis.call('HSET', deferred_records, held, id .. ' ' .. record)
        redis.call('HINCRBY', counts, 'quiet', 1)
      elseif until_ms then
        redis.call('HDEL', quiet, field)  -- its period is over: the hash keeps live ones only
      end
    else
      if redis.call('HDEL', quiet, held) == 1 then
        send = false
        redis.call('ZREM', deferred, held)
        redis.call('HDEL', deferred_records, held)
      end
      redis.call('HSET', quiet, field, now + quiet_ms)
    end
  end
  -- Daily cap: beyond it events are counted, and the next day's digest tells how many.
  if send and is_insight and cap > 0 then
    if redis.call('HINCRBY', counts, 'sent', 1) > cap then
      send = false
      redis.call('HINCRBY', counts, 'held', 1)
    end
  end
  if is_insight then redis.call('EXPIRE', counts, ARGV[5]) end
  if send and redis.call('HSETNX', deliveries, id, record) == 1 then
    redis.call('ZADD', queue, redis.call('INCR', order), id)
    redis.call('ZADD', history, now, id)
    redis.call('ZADD', due, 'NX', now, sub)
    made = made + 1
    -- The history keeps the newest deliveries: an older one that is no longer queued leaves
    -- it and is forgotten (a queued one stays, so every queued delivery can be listed).
    local excess = redis.call('ZCARD', history) - tonumber(ARGV[6])
    if excess > 0 then
      for _, old in ipairs(redis.call('ZRANGE', history, 0, excess - 1)) do
        if not redis.call('ZSCORE', queue, old) then
          redis.call('HDEL', deliveries, old)
          redis.call('ZREM', history, old)
        end
      end
    end
  end
end
return made
