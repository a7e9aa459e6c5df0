-- Ask a worker to check a tenant from ARGV[2] (epoch ms) on. The score always rises, even
-- when the new time is not later, so a worker that read the old score and is checking the
-- tenant cannot remove this newer mark (finish_check.lua compares the score).
-- KEYS[1] the sorted set of tenants to check   ARGV[1] tenant   ARGV[2] due (epoch ms)
local due = tonumber(ARGV[2])
local old = redis.call('ZSCORE', KEYS[1], ARGV[1])
if old and tonumber(old) >= due then
  due = tonumber(old) + 1
end
redis.call('ZADD', KEYS[1], due, ARGV[1])
return tostring(due)
