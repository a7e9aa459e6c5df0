-- Define (or with an empty ARGV[2], delete) a connector, and invalidate what depended on the old
-- definitions in the same step: the data version is bumped (ad-hoc views are keyed by it), the
-- precomputed views in KEYS[3..] lose their body but keep the new version (so a worker still
-- building from the old definitions cannot store its result: see put_view.lua), and the
-- ingest path re-reads definitions when their token changes.
-- KEYS[1] definitions hash   KEYS[2] meta hash   KEYS[3..] precomputed views to invalidate
-- ARGV[1] field (direction \x1f name)   ARGV[2] definition JSON, '' to delete   ARGV[3] new token
-- ARGV[4] the invalidation channel: API processes drop their copies of the blanked views
-- ARGV[5] the most definitions a tenant may have (every one is a row of every report)
-- Returns 1 when something changed (a delete of an unknown connector changes nothing), -1 when
-- a new definition is refused at the limit (nothing changed).
local changed
if ARGV[2] == '' then
  changed = redis.call('HDEL', KEYS[1], ARGV[1])
elseif redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0
    and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[5]) then
  return -1
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  changed = 1
end
if changed == 1 then
  local version = redis.call('HINCRBY', KEYS[2], 'version', 1)
  redis.call('HSET', KEYS[2], 'definitions_token', ARGV[3])
  for k = 3, #KEYS do
    if redis.call('EXISTS', KEYS[k]) == 1 then
      redis.call('HSET', KEYS[k], 'version', version)
      redis.call('HDEL', KEYS[k], 'body', 'etag')
      redis.call('PUBLISH', ARGV[4], KEYS[k])
    end
  end
end
return changed
