-- Accept a batch of traces that are all new, atomically; or change nothing and say so.
-- The common case: a shipper sends each trace once, so nothing in a batch is known yet. Then
-- the API has counted the batch already, and the only work per trace here is cutting out its
-- digest: no per-trace counting as in ingest.lua, which the caller uses when this declines.
-- KEYS[1]    the tenant's stream
-- KEYS[2..]  the tenant's seen-sets, one per UTC day present in the batch
-- ARGV[1]    consumer group name (created with the stream, so no entry is ever missed)
-- ARGV[2]    seconds a seen-set lives after its last addition (the dedupe window)
-- ARGV[3]    per trace, one byte: the index in KEYS of its seen-set
-- ARGV[4]    per trace, 16 bytes: the digest of its id (the API found them distinct)
-- ARGV[5]    the batch's counts, "counting key TAB count" lines; ARGV[6] its newest time
-- Returns the number of traces, all new and appended as one stream entry; or -1, having
-- written nothing, when any id is known already.
local set_of, digests = ARGV[3], ARGV[4]
local by_set = {}
for i = 1, #set_of do
  local k = string.byte(set_of, i)
  local list = by_set[k]
  if not list then
    list = {}
    by_set[k] = list
  end
  list[#list + 1] = string.sub(digests, i * 16 - 15, i * 16)
end
for k, list in pairs(by_set) do
  for first = 1, #list, 4000 do
    local present = redis.call('SMISMEMBER', KEYS[k], unpack(list, first, math.min(first + 3999, #list)))
    for j = 1, #present do
      if present[j] == 1 then
        return -1
      end
    end
  end
end
local stream = KEYS[1]
if redis.call('EXISTS', stream) == 0 then
  redis.call('XGROUP', 'CREATE', stream, ARGV[1], '0', 'MKSTREAM')
end
for k, list in pairs(by_set) do
  for first = 1, #list, 4000 do
    redis.call('SADD', KEYS[k], unpack(list, first, math.min(first + 3999, #list)))
  end
  redis.call('EXPIRE', KEYS[k], ARGV[2])
end
redis.call('XADD', stream, '*', 'n', #set_of, 'newest', ARGV[6], 'counts', ARGV[5])
return #set_of
