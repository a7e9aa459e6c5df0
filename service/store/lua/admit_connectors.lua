-- Admit the named connectors of one ingest batch to the tenant's registry of distinct
-- connectors, atomically, so that two concurrent batches can never take the tenant past its
-- limit: a connector already known is admitted (its newest day moved on), a new one only while
-- the registry holds fewer than the limit, every other one is refused.
-- KEYS[1] registry (zset "direction\x1fname" -> newest UTC day as an ordinal)
-- ARGV[1] limit   ARGV[2] oldest day still in retention (ordinal): connectors whose newest day
--                 is older have no counters left in any report window, and are forgotten
-- ARGV[3] the registry's lifetime in seconds (a duration from the service's clock)
-- ARGV[4..] pairs: connector, newest day of its traces in this batch (ordinal)
-- Returns the refused connectors. Work is bounded by the limit plus the batch's connectors.
local registry, limit, oldest = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', registry, '-inf', '(' .. oldest)
local count = redis.call('ZCARD', registry)
local refused = {}
for i = 4, #ARGV, 2 do
  local name, day = ARGV[i], tonumber(ARGV[i + 1])
  local known = redis.call('ZSCORE', registry, name)
  if known then
    if tonumber(known) < day then
      redis.call('ZADD', registry, day, name)
    end
  elseif count < limit then
    redis.call('ZADD', registry, day, name)
    count = count + 1
  else
    refused[#refused + 1] = name
  end
end
if count > 0 then
  redis.call('EXPIRE', registry, ARGV[3])
end
return refused
