-- Count one TLS-RPT report exactly once: the report's own hash is the mark, and the mark, the
-- original and every counter are written in this one atomic call, or none of them.
-- KEYS[1] the report's hash, KEYS[2] its day's counters, KEYS[3] its day's report index
-- KEYS[4] the tenant's meta hash: its rules_version, what makes an insight evaluation due, is
--         bumped, since a counted report changes what the TLS-RPT rules find; and its
--         tlsrpt_version, which the cached TLS-RPT reports are built at
-- ARGV[1] milliseconds to keep all three (a duration from the service's clock)
-- ARGV[2] most counter fields a day may hold, ARGV[3] most reports a day may hold
-- ARGV[4] the report identity, ARGV[5] its index entry, ARGV[6] the gzip'd original,
-- ARGV[7] received at, ARGV[8] the day, ARGV[9..] counter field, increment, ...
-- Returns 1 counted, 0 a duplicate, -1 the day's counters are full, -2 its report index is.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
-- Whether the day can take the report's fields: at once when it could take them all as new
-- ones (nearly always), else counting the ones that are new.
local held, limit = redis.call('HLEN', KEYS[2]), tonumber(ARGV[2])
if held + (#ARGV - 8) / 2 > limit then
  local new_fields = 0
  for i = 9, #ARGV, 2 do
    if redis.call('HEXISTS', KEYS[2], ARGV[i]) == 0 then
      new_fields = new_fields + 1
    end
  end
  if held + new_fields > limit then
    return -1
  end
end
if redis.call('HLEN', KEYS[3]) >= tonumber(ARGV[3]) then
  return -2
end
local ttl = tonumber(ARGV[1])
redis.call('HSET', KEYS[1], 'gz', ARGV[6], 'received_at', ARGV[7], 'entry', ARGV[5],
           'day', ARGV[8])
redis.call('PEXPIRE', KEYS[1], ttl)
for i = 9, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[2], ARGV[i], ARGV[i + 1])
end
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('HSET', KEYS[3], ARGV[4], ARGV[5])
redis.call('PEXPIRE', KEYS[3], ttl)
redis.call('HINCRBY', KEYS[4], 'rules_version', 1)
redis.call('HINCRBY', KEYS[4], 'tlsrpt_version', 1)
return 1
