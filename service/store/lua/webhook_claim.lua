-- Take the first delivery of a subscription's queue to send it, if it is due: its due time
-- moves to the end of the lease, so no other notifier sends it meanwhile, and a notifier that
-- dies while sending leaves it due again when the lease ends (the same delivery id is resent).
-- KEYS[1] due  KEYS[2] the subscription's queue  KEYS[3] deliveries
-- ARGV[1] subscription id  ARGV[2] now (epoch ms)  ARGV[3] lease end (epoch ms)
-- Returns {delivery id, record JSON}, or nil when nothing is due.
local due, queue, deliveries = KEYS[1], KEYS[2], KEYS[3]
local at = redis.call('ZSCORE', due, ARGV[1])
if not at or tonumber(at) > tonumber(ARGV[2]) then return nil end
while true do
  local head = redis.call('ZRANGE', queue, 0, 0)[1]
  if not head then
    redis.call('ZREM', due, ARGV[1])
    return nil
  end
  local record = redis.call('HGET', deliveries, head)
  if record then
    redis.call('ZADD', due, ARGV[3], ARGV[1])
    return {head, record}
  end
  redis.call('ZREM', queue, head)  -- its record is gone (the subscription was being deleted)
end
