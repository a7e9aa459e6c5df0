-- Read the kept rows of some days (store/day_rows.py), each checked against its day's data
-- version, its blocked counters' version and the definitions token in this one atomic call.
-- Read-only: it answers also when Redis is at its memory limit (a MULTI is refused then).
-- KEYS[1] meta hash; then per day, three keys: its version string, its blocked counters'
-- version string, its kept rows hash.
-- Returns {version, data_as_of_ms, then per day: the stamp its rows have while they hold,
-- rows, messages (both false unless they hold)}.
local meta = redis.call('HMGET', KEYS[1], 'version', 'data_as_of_ms', 'definitions_token')
local token = meta[3] or ''
local out = {meta[1] or '0', meta[2] or ''}
for k = 2, #KEYS, 3 do
  local holds = (redis.call('GET', KEYS[k]) or '0') .. ':' ..
                (redis.call('GET', KEYS[k + 1]) or '0') .. ':' .. token
  local kept = redis.call('HMGET', KEYS[k + 2], 'stamp', 'rows', 'messages')
  local n = #out
  out[n + 1] = holds
  if kept[1] == holds and kept[2] then
    out[n + 2], out[n + 3] = kept[2], kept[3] or ''
  else
    out[n + 2], out[n + 3] = false, false
  end
end
return out
