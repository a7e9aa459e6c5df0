-- What a worker checking a tenant needs, read at one instant: the data and rules versions,
-- the version its views include, the marker of its last evaluation and how many stream
-- entries are read but not folded (a fold in flight, or left by a dead worker).
-- KEYS[1] meta   KEYS[2] views built version   KEYS[3] stream   KEYS[4] last evaluation
-- ARGV[1] the consumer group
-- Returns {version, rules version, views version, pending entries, evaluation marker}.
local version, rules = unpack(redis.call('HMGET', KEYS[1], 'version', 'rules_version'))
local built = redis.call('GET', KEYS[2])
local pending = 0
if redis.call('EXISTS', KEYS[3]) == 1 then
  local summary = redis.pcall('XPENDING', KEYS[3], ARGV[1])
  if type(summary) == 'table' and summary.err == nil then
    pending = summary[1]
  end
end
local marker = redis.call('HGET', KEYS[4], 'marker')
return {version or '0', rules or '0', built or '0', pending, marker or ''}
