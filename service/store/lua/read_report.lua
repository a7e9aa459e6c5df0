-- Read what a report needs, atomically: the data version, the connector definitions and the
-- daily counters of some days, reduced here so only the reduction crosses the wire. (The sum
-- of a whole window is store/window_sums.py.)
-- KEYS[1] meta hash   KEYS[2] connector definitions hash   KEYS[3..] daily counter hashes
-- ARGV[1] mode: 'days'   one packed string per day (in KEYS order)
--               'prefix' one packed string per day, only fields starting with ARGV[2]
--               'tls'    one packed string per day: direction \x1f version [\x1f class
--                        [\x1f downgraded]] -> messages
-- ARGV[3] '1': return the definitions, '0': an empty list (a later chunk of one read)
-- Packed: "field\tcount\n..." (counter fields never contain control characters).
-- Returns {version, data_as_of_ms, definitions (flat field/value list), packed...}.
-- The caller keeps each call to a bounded number of fields (store/day_chunks.py).
local mode, prefix = ARGV[1], ARGV[2] or ''
local version = redis.call('HGET', KEYS[1], 'version') or '0'
local as_of = redis.call('HGET', KEYS[1], 'data_as_of_ms') or ''
local definitions = {}
if ARGV[3] ~= '0' then definitions = redis.call('HGETALL', KEYS[2]) end
local out = {version, as_of, definitions}
if mode == 'tls' then
  for k = 3, #KEYS do
    local h = redis.call('HGETALL', KEYS[k])
    local sums, order = {}, {}
    for j = 1, #h, 2 do
      local f = h[j]
      -- direction, then the TLS segment and what follows it (class, downgrade), if any
      local direction, tls = string.match(f, '^([^\031]*)\031[^\031]*\031[^\031]*\031(.*)$')
      local key = direction .. '\031' .. tls
      local v = sums[key]
      if v == nil then
        order[#order + 1] = key
        sums[key] = tonumber(h[j + 1])
      else
        sums[key] = v + tonumber(h[j + 1])
      end
    end
    local lines = {}
    for i, key in ipairs(order) do lines[i] = key .. '\t' .. sums[key] end
    out[#out + 1] = table.concat(lines, '\n')
  end
  return out
end
local plen = #prefix
for k = 3, #KEYS do
  local h = redis.call('HGETALL', KEYS[k])
  local lines = {}
  for j = 1, #h, 2 do
    if plen == 0 or string.sub(h[j], 1, plen) == prefix then
      lines[#lines + 1] = h[j] .. '\t' .. h[j + 1]
    end
  end
  out[#out + 1] = table.concat(lines, '\n')
end
return out
