-- Read the kept rows of some days (store/day_rows.py), each checked against its day's data
-- version, its blocked counters' version and the definitions token in this one atomic call.
-- Read-only: it answers also when Redis is at its memory limit (a MULTI is refused then).
-- KEYS[1] meta hash; then per day, three keys: its version string, its blocked counters'
-- version string, its kept rows hash.
-- ARGV: per day, the digest of the rows the caller holds in memory for it ('' for none):
-- rows with that digest are not sent again (the digest names their content).
-- Returns {version, data_as_of_ms, then per day: the stamp its rows have while they hold,
-- their digest ('' when kept without one; false unless they hold), rows, messages (false
-- unless they hold, and false also when their digest is the caller's)}.
local meta = redis.call('HMGET', KEYS[1], 'version', 'data_as_of_ms', 'definitions_token')
local token = meta[3] or ''
local out = {meta[1] or '0', meta[2] or ''}
for k = 2, #KEYS, 3 do
  local holds = (redis.call('GET', KEYS[k]) or '0') .. ':' ..
                (redis.call('GET', KEYS[k + 1]) or '0') .. ':' .. token
  -- The rows only when they are to be sent: bringing them into Lua costs as much.
  local kept = redis.call('HMGET', KEYS[k + 2], 'stamp', 'digest')
  local held = ARGV[(k + 1) / 3] or ''
  local n = #out
  out[n + 1] = holds
  local digest = kept[2] or ''
  if kept[1] == holds and digest ~= '' and digest == held then
    out[n + 2], out[n + 3], out[n + 4] = digest, false, false
  elseif kept[1] == holds then
    local parts = redis.call('HMGET', KEYS[k + 2], 'rows', 'messages')
    if parts[1] then
      out[n + 2], out[n + 3], out[n + 4] = digest, parts[1], parts[2] or ''
    else
      out[n + 2], out[n + 3], out[n + 4] = false, false, false
    end
  else
    out[n + 2], out[n + 3], out[n + 4] = false, false, false
  end
end
return out
