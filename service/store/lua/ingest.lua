-- Accept a batch of traces atomically: dedupe by id digest, append only the new ones.
-- KEYS[1]    the tenant's stream
-- KEYS[2..]  the tenant's seen-sets, one per UTC day present in the batch
-- ARGV[1]    consumer group name (created with the stream, so no entry is ever missed)
-- ARGV[2]    seconds a seen-set lives after its last addition (the dedupe window)
-- ARGV[3..]  per trace: index of its seen-set in KEYS, id digest, stream record
-- Returns the number of new traces; the rest were duplicates.
local stream = KEYS[1]
if redis.call('EXISTS', stream) == 0 then
  redis.call('XGROUP', 'CREATE', stream, ARGV[1], '0', 'MKSTREAM')
end
local fresh = {}
local touched = {}
for i = 3, #ARGV, 3 do
  local seen = KEYS[tonumber(ARGV[i])]
  if redis.call('SADD', seen, ARGV[i + 1]) == 1 then
    fresh[#fresh + 1] = ARGV[i + 2]
    touched[seen] = true
  end
end
for seen in pairs(touched) do
  redis.call('EXPIRE', seen, ARGV[2])
end
if #fresh > 0 then
  redis.call('XADD', stream, '*', 'n', #fresh, 'traces', table.concat(fresh, '\n'))
end
return #fresh
