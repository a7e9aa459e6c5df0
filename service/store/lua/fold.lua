-- Fold stream entries into the daily counters and acknowledge them, atomically.
-- An entry is folded only while it is still pending for this consumer: if another worker
-- claimed it (we were presumed dead), it is skipped here and counted by that worker alone.
-- KEYS[1]    the tenant's stream      KEYS[2]  the tenant's meta hash
-- KEYS[3..]  the daily counter hashes this call touches
-- ARGV[1] group  ARGV[2] consumer  ARGV[3] number of entries
-- then per entry: id, newest trace epoch ms, number of increments, then per increment:
--   index of its daily hash in KEYS, counter field, amount
-- then per daily hash (in KEYS order from 3): the epoch second at which it expires
-- Returns {entries folded, traces folded, entries skipped}.
local stream, meta = KEYS[1], KEYS[2]
local group, consumer = ARGV[1], ARGV[2]
local pos = 4
local folded, traces, skipped = 0, 0, 0
local newest = 0
local acked = {}
for _ = 1, tonumber(ARGV[3]) do
  local id, entry_newest, n = ARGV[pos], tonumber(ARGV[pos + 1]), tonumber(ARGV[pos + 2])
  pos = pos + 3
  local mine = #redis.call('XPENDING', stream, group, id, id, 1, consumer) == 1
  for _ = 1, n do
    if mine then
      local amount = tonumber(ARGV[pos + 2])
      redis.call('HINCRBY', KEYS[tonumber(ARGV[pos])], ARGV[pos + 1], amount)
      traces = traces + amount
    end
    pos = pos + 3
  end
  if mine then
    folded = folded + 1
    acked[#acked + 1] = id
    if entry_newest > newest then newest = entry_newest end
  else
    skipped = skipped + 1
  end
end
for k = 3, #KEYS do
  redis.call('EXPIREAT', KEYS[k], ARGV[pos])
  pos = pos + 1
end
if folded > 0 then
  redis.call('XACK', stream, group, unpack(acked))
  redis.call('XDEL', stream, unpack(acked))
  redis.call('HINCRBY', meta, 'version', 1)
  local previous = tonumber(redis.call('HGET', meta, 'data_as_of_ms') or '0')
  if newest > previous then
    redis.call('HSET', meta, 'data_as_of_ms', newest)
  end
end
return {folded, traces, skipped}
