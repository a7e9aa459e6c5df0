-- Authenticate an API key and count the request against its rate limit, in one round trip.
-- KEYS[1]  the key's record (hash)
-- KEYS[2]  the key's counter for this request kind and fixed window
-- ARGV[1]  sha256 (hex) of the presented secret
-- ARGV[2]  seconds the counter must live (to the end of the window, plus slack)
-- Returns {status, tenant, scopes, stored hash, count}; status is ok | unknown | revoked |
-- mismatch. Only a request with the right secret is counted: a caller who knows a key's public
-- id but not its secret cannot spend the key's rate limit. The caller compares the hashes again
-- in constant time; this check only decides what is counted.
local record = redis.call('HMGET', KEYS[1], 'tenant', 'scopes', 'hash', 'revoked_at')
if not record[1] or not record[3] then
  return {'unknown', '', '', '', 0}
end
if record[4] then
  return {'revoked', '', '', '', 0}
end
if record[3] ~= ARGV[1] then
  return {'mismatch', '', '', '', 0}
end
local count = redis.call('INCR', KEYS[2])
if count == 1 then
  redis.call('EXPIRE', KEYS[2], ARGV[2])
end
return {'ok', record[1], record[2], record[3], count}
