-- Accept a batch of traces that are all new, atomically; or change nothing and say so.
-- The common case: a shipper sends each trace once, so nothing in a batch is known yet. Then
-- the API has counted the batch already, and the only work per trace here is cutting out its
-- id: no per-trace counting as in ingest.lua, which the caller uses when this declines.
-- KEYS[1]    the tenant's stream
-- KEYS[2..]  the seen-buckets of the dedupe window (store/seen_buckets.py), G per acceptance
--            day, G the number of digest prefixes the batch holds, in one order on every day:
--            today's (by the service's clock; new ids go there), then the days before, then
--            tomorrow's (for a host whose clock runs ahead around midnight): read, never written
-- ARGV[1]    consumer group name (created with the stream, so no entry is ever missed)
-- ARGV[2]    seconds today's buckets must live (until no lookup reads them)
-- ARGV[3]    the ids: "n LF", n bytes (each trace's prefix index, 0..G-1), then the n integer
--            members separated by spaces (the API found the ids distinct)
-- ARGV[4]    the batch's counts, "counting key TAB count" lines; ARGV[5] its newest time
-- ARGV[6]    optional: the batch's who counts (service.core.traces.who_key), "key TAB count"
-- Returns the number of traces, all new and appended as one stream entry; or -1, having
-- written nothing, when any bucket knows an id already.
local ids = ARGV[3]
local header = string.find(ids, '\n', 1, true)
local n = tonumber(string.sub(ids, 1, header - 1))
-- The members of each prefix index; every index 1..G occurs.
local by_prefix, groups, i = {}, 0, 0
for member in string.gmatch(string.sub(ids, header + n + 1), '%S+') do
  i = i + 1
  local g = string.byte(ids, header + i) + 1
  local list = by_prefix[g]
  if not list then
    list = {}
    by_prefix[g] = list
    groups = groups + 1
  end
  list[#list + 1] = member
end
for day = 0, (#KEYS - 1) / groups - 1 do
  local first_key = 2 + day * groups
  -- One EXISTS for the whole day: tomorrow's buckets, and the days a tenant sent nothing, cost
  -- one call.
  if redis.call('EXISTS', unpack(KEYS, first_key, first_key + groups - 1)) > 0 then
    for g = 1, groups do
      local list = by_prefix[g]
      for first = 1, #list, 4000 do
        local present = redis.call('SMISMEMBER', KEYS[first_key + g - 1],
                                   unpack(list, first, math.min(first + 3999, #list)))
        for j = 1, #present do
          if present[j] == 1 then
            return -1
          end
        end
      end
    end
  end
end
local stream = KEYS[1]
if redis.call('EXISTS', stream) == 0 then
  redis.call('XGROUP', 'CREATE', stream, ARGV[1], '0', 'MKSTREAM')
end
for g = 1, groups do
  local list = by_prefix[g]
  for first = 1, #list, 4000 do
    redis.call('SADD', KEYS[1 + g], unpack(list, first, math.min(first + 3999, #list)))
  end
  redis.call('EXPIRE', KEYS[1 + g], ARGV[2])
end
if ARGV[6] and ARGV[6] ~= '' then
  redis.call('XADD', stream, '*', 'n', n, 'newest', ARGV[5], 'counts', ARGV[4], 'who', ARGV[6])
else
  redis.call('XADD', stream, '*', 'n', n, 'newest', ARGV[5], 'counts', ARGV[4])
end
return n
