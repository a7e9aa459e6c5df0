-- Create or replace one webhook subscription, and keep the due index in step with it.
-- KEYS[1] subscriptions (hash id -> JSON)  KEYS[2] due (zset id -> ms)  KEYS[3] its queue
-- ARGV[1] id  ARGV[2] JSON  ARGV[3] 'create' | 'update'  ARGV[4] most subscriptions a tenant
-- may have  ARGV[5] now (epoch ms)  ARGV[6] '1' enabled | '0' disabled
-- Returns 1 saved, 0 over the limit, -1 no such subscription (update) or id taken (create).
local subs, due, queue = KEYS[1], KEYS[2], KEYS[3]
local exists = redis.call('HEXISTS', subs, ARGV[1]) == 1
if ARGV[3] == 'create' then
  if exists then return -1 end
  if redis.call('HLEN', subs) >= tonumber(ARGV[4]) then return 0 end
elseif not exists then
  return -1
end
redis.call('HSET', subs, ARGV[1], ARGV[2])
-- Disabled: nothing of it is sent (its queue waits). Enabled again: its queue is due at once.
if ARGV[6] == '1' then
  if redis.call('ZCARD', queue) > 0 then
    redis.call('ZADD', due, 'NX', ARGV[5], ARGV[1])
  end
else
  redis.call('ZREM', due, ARGV[1])
end
return 1
