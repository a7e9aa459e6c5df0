-- Reset one trace day of a tenant, atomically: its counters go, its data version moves on (a
-- cached sum of days that includes it is stale: store/window_sums.py), and its dedupe
-- generation is bumped, so the trace ids of that day count as new once (store/dedupe_resets.py).
-- Refused while the tenant's stream holds an entry that counts that day (accepted, not yet
-- folded, or being folded by a worker): its fold would land in the day after the reset.
-- KEYS[1] the tenant's stream   KEYS[2] its meta hash   KEYS[3] the day's version string
-- KEYS[4] the tenant's dedupe resets hash
-- KEYS[5..] the day's counter keys (KEYS[5]: the messages counters, summed for the answer),
--           then ARGV[4] version strings of its other counters (blocked, per name), each set
--           to the new data version as KEYS[3] is
-- ARGV[1] the day (YYYY-MM-DD)
-- ARGV[2] ms the version string and the resets hash live from now (durations from the
--         service's clock, as in fold.lua)
-- ARGV[3] the most stream entries to look through; more waiting: refused
-- ARGV[4] how many of the last KEYS are version strings
-- Returns {messages removed, -1} or, refused, {-1, entries waiting}.
local stream = KEYS[1]
local waiting = redis.call('XLEN', stream)
if waiting > tonumber(ARGV[3]) then
  return {-1, waiting}
end
if waiting > 0 then
  -- Counting keys are "day RS field", one per line (ingest.lua).
  local needle = '\n' .. ARGV[1] .. '\30'
  for _, entry in ipairs(redis.call('XRANGE', stream, '-', '+')) do
    local fields = entry[2]
    for i = 1, #fields - 1, 2 do
      if fields[i] == 'counts' and string.find('\n' .. fields[i + 1], needle, 1, true) then
        return {-1, waiting}
      end
    end
  end
end
local removed = 0
local values = redis.call('HVALS', KEYS[5])
for i = 1, #values do
  removed = removed + tonumber(values[i])
end
local first_version = #KEYS - tonumber(ARGV[4]) + 1
for k = 5, first_version - 1 do
  redis.call('DEL', KEYS[k])
end
local version = redis.call('HINCRBY', KEYS[2], 'version', 1)
redis.call('SET', KEYS[3], version, 'PX', ARGV[2])
for k = first_version, #KEYS do
  redis.call('SET', KEYS[k], version, 'PX', ARGV[2])
end
redis.call('HINCRBY', KEYS[4], ARGV[1], 1)
redis.call('PEXPIRE', KEYS[4], ARGV[2])
return {removed, -1}
