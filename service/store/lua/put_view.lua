-- Store a built report unless a newer one (built from a later fold) is already there.
-- KEYS[1] view hash   ARGV[1] data version it was built from   ARGV[2] body   ARGV[3] etag
-- ARGV[4] time to live in seconds (0: keep)   ARGV[5] the invalidation channel (API processes
-- keep copies of views; they drop this one when told)
local current = tonumber(redis.call('HGET', KEYS[1], 'version') or '-1')
if current > tonumber(ARGV[1]) then
  return 0
end
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'body', ARGV[2], 'etag', ARGV[3])
if tonumber(ARGV[4]) > 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[4])
else
  redis.call('PERSIST', KEYS[1])
end
redis.call('PUBLISH', ARGV[5], KEYS[1])
return 1
