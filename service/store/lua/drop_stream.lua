-- Delete a tenant's stream unless a worker is folding from it (entries read, not yet acked):
-- its fold would then find no stream. Without the stream, a worker reading it finds nothing.
-- KEYS[1] the tenant's stream   ARGV[1] the consumer group
-- Returns the number of entries being folded (0: the stream is gone).
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
local ok, pending = pcall(redis.call, 'XPENDING', KEYS[1], ARGV[1])
if ok and tonumber(pending[1]) > 0 then
  return tonumber(pending[1])
end
redis.call('DEL', KEYS[1])
return 0
