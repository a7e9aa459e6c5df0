-- Store a built report unless a newer one (built from a later fold) is already there.
-- KEYS[1] view hash   KEYS[2] (large bodies) a staging hash already holding the new view's
--                     version, body and etag, written beforehand by a plain HSET: a large body
--                     then is copied once, outside any script, and moved into place here (O(1))
-- ARGV[1] data version it was built from   ARGV[2] body   ARGV[3] etag (both '' when staged)
-- ARGV[4] time to live in seconds (0: keep)   ARGV[5] the invalidation channel (API processes
-- keep copies of views; they drop this one when told)
local current = tonumber(redis.call('HGET', KEYS[1], 'version') or '-1')
if current > tonumber(ARGV[1]) then
  if KEYS[2] then redis.call('DEL', KEYS[2]) end
  return 0
end
if KEYS[2] then
  if redis.call('EXISTS', KEYS[2]) == 0 then
    return 0 -- the staged copy expired before it was moved: the view is built again later
  end
  redis.call('RENAME', KEYS[2], KEYS[1])
else
  redis.call('HSET', KEYS[1], 'version', ARGV[1], 'body', ARGV[2], 'etag', ARGV[3])
end
if tonumber(ARGV[4]) > 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[4])
else
  redis.call('PERSIST', KEYS[1])
end
redis.call('PUBLISH', ARGV[5], KEYS[1])
return 1
