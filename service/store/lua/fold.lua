-- Fold stream entries into the daily counters and acknowledge them, atomically.
-- Entries are folded only while every one of them is still pending for this consumer: if
-- another worker claimed one (we were presumed dead), nothing is done and the stale ids are
-- returned, so the caller drops them, re-adds up the rest and calls again.
-- KEYS[1]    the tenant's stream      KEYS[2]  the tenant's meta hash
-- KEYS[3 .. 2+D]    the daily counter hashes this call touches (D of them)
-- KEYS[3+D .. 2+2D] the same days' version strings
-- ARGV[1] group   ARGV[2] consumer   ARGV[3] newest trace epoch ms   ARGV[4] traces
-- ARGV[5] the increments, msgpack: a flat array of triples <index of a hash in KEYS>, <its
--         fields>, <their amounts> (two arrays of one length, the fields distinct within a
--         hash, the amounts integers); no text to parse, so a field may hold any byte
-- ARGV[6] how many ms the daily hashes live from now, space-separated, KEYS order: durations
--         from the service's clock, never moments read against Redis's own clock
-- ARGV[7] the increments of blocked counters, one per line:
--         "<index of its daily hash in KEYS>\t<field>\t<overflow field>\t<n>": a field new to
--         its hash once the hash holds ARGV[8] fields adds to its overflow field instead
-- ARGV[8] the most distinct fields a day's blocked hash takes (then overflow fields only)
-- ARGV[9..] the entry ids
-- Returns {entries folded, stale ids}.
local stream, meta = KEYS[1], KEYS[2]
local group, consumer = ARGV[1], ARGV[2]
local days = (#KEYS - 2) / 2
local ids = {}
local stale = {}
for i = 9, #ARGV do
  local id = ARGV[i]
  ids[#ids + 1] = id
  if #redis.call('XPENDING', stream, group, id, id, 1, consumer) == 0 then
    stale[#stale + 1] = id
  end
end
if #stale > 0 then
  return {0, stale}
end
-- The increments are added per hash with one HMGET and one HSET for a chunk of its fields,
-- not one HINCRBY each: at some 20,000 fields a call (per-domain and per-user counters, store/
-- who_counters.py) the calls themselves cost four fifths of the script. Same result: the
-- caller adds up a field's increments first, and counts stay integers (exact below 2^53).
-- A sum goes to HSET as a Lua number: Redis writes it as %.17g does (6.2) or its equal
-- (fpconv, Valkey 8), digits only below 10^17, so no string.format per field is needed.
local adds = cmsgpack.unpack(ARGV[5])
local CHUNK = 2000
for h = 1, #adds, 3 do
  local hash, fields, amounts = KEYS[adds[h]], adds[h + 1], adds[h + 2]
  for first = 1, #fields, CHUNK do
    local last = math.min(first + CHUNK - 1, #fields)
    local have = redis.call('HMGET', hash, unpack(fields, first, last))
    local writes, w = {}, 0
    for j = first, last do
      writes[w + 1] = fields[j]
      writes[w + 2] = (tonumber(have[j - first + 1]) or 0) + amounts[j]
      w = w + 2
    end
    redis.call('HSET', hash, unpack(writes))
  end
end
local most = tonumber(ARGV[8])
for index, field, overflow, amount in
    string.gmatch(ARGV[7], '(%d+)\t([^\t\n]*)\t([^\t\n]*)\t(%d+)\n') do
  local hash = KEYS[tonumber(index)]
  if redis.call('HLEN', hash) >= most and redis.call('HEXISTS', hash, field) == 0 then
    field = overflow
  end
  redis.call('HINCRBY', hash, field, amount)
end
local version = redis.call('HINCRBY', meta, 'version', 1)
-- Each day remembers the data version of its last change: a cached sum of some days
-- (store/window_sums.py) is good only while none of its days has a newer one.
local k = 3
for lifetime in string.gmatch(ARGV[6], '%d+') do
  redis.call('PEXPIRE', KEYS[k], lifetime)
  redis.call('SET', KEYS[k + days], version, 'PX', lifetime)
  k = k + 1
end
redis.call('XACK', stream, group, unpack(ids))
redis.call('XDEL', stream, unpack(ids))
redis.call('HINCRBY', meta, 'folded_traces', ARGV[4])
local previous = tonumber(redis.call('HGET', meta, 'data_as_of_ms') or '0')
if tonumber(ARGV[3]) > previous then
  redis.call('HSET', meta, 'data_as_of_ms', ARGV[3])
end
return {#ids, stale}
