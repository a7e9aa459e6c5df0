-- Accept a batch of traces that are all new, atomically; or change nothing and say so.
-- The common case: a shipper sends each trace once, so nothing in a batch is known yet. Then
-- the API has counted the batch already, and the only work per trace here is cutting out its
-- digest: no per-trace counting as in ingest.lua, which the caller uses when this declines.
-- KEYS[1]    the tenant's stream
-- KEYS[2]    the seen-bucket of today's acceptances (by the service's clock): new ids go here
-- KEYS[3..]  the other seen-buckets of the dedupe window (the days before, and tomorrow's
--            for a host whose clock runs ahead around midnight): read, never written
-- ARGV[1]    consumer group name (created with the stream, so no entry is ever missed)
-- ARGV[2]    seconds today's bucket must live (until no lookup reads it)
-- ARGV[3]    per trace, 16 bytes: the digest of its id (the API found them distinct)
-- ARGV[4]    the batch's counts, "counting key TAB count" lines; ARGV[5] its newest time
-- ARGV[6]    optional: the batch's who counts (service.core.traces.who_key), "key TAB count"
-- Returns the number of traces, all new and appended as one stream entry; or -1, having
-- written nothing, when any bucket knows an id already.
local digests = ARGV[3]
local n = #digests / 16
local list = {}
for i = 1, n do
  list[i] = string.sub(digests, i * 16 - 15, i * 16)
end
for k = 2, #KEYS do
  if redis.call('EXISTS', KEYS[k]) == 1 then
    for first = 1, n, 4000 do
      local present = redis.call('SMISMEMBER', KEYS[k], unpack(list, first, math.min(first + 3999, n)))
      for j = 1, #present do
        if present[j] == 1 then
          return -1
        end
      end
    end
  end
end
local stream = KEYS[1]
if redis.call('EXISTS', stream) == 0 then
  redis.call('XGROUP', 'CREATE', stream, ARGV[1], '0', 'MKSTREAM')
end
for first = 1, n, 4000 do
  redis.call('SADD', KEYS[2], unpack(list, first, math.min(first + 3999, n)))
end
redis.call('EXPIRE', KEYS[2], ARGV[2])
if ARGV[6] and ARGV[6] ~= '' then
  redis.call('XADD', stream, '*', 'n', n, 'newest', ARGV[5], 'counts', ARGV[4], 'who', ARGV[6])
else
  redis.call('XADD', stream, '*', 'n', n, 'newest', ARGV[5], 'counts', ARGV[4])
end
return n
