-- Remove a tenant's check mark, unless it was marked again since the caller read ARGV[2].
-- KEYS[1] the sorted set of tenants to check   ARGV[1] tenant   ARGV[2] the score read
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) == tonumber(ARGV[2]) then
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
