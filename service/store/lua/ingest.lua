-- Accept a batch of traces atomically: dedupe by id digest, append only the new ones.
-- KEYS[1]    the tenant's stream
-- KEYS[2..]  the tenant's seen-sets, one per UTC day present in the batch
-- ARGV[1]    consumer group name (created with the stream, so no entry is ever missed)
-- ARGV[2]    seconds a seen-set lives after its last addition (the dedupe window)
-- ARGV[3]    per trace, one byte: the index in KEYS of its seen-set
-- ARGV[4]    per trace, 16 bytes: the digest of its id
-- ARGV[5]    the stream records, newline-separated, in the same order
-- Three blobs rather than three arguments per trace: packing 15,000 arguments costs the API
-- more than the whole script costs Redis.
-- Returns the number of new traces; the rest were duplicates.
local stream = KEYS[1]
if redis.call('EXISTS', stream) == 0 then
  redis.call('XGROUP', 'CREATE', stream, ARGV[1], '0', 'MKSTREAM')
end
local seen_index, digests = ARGV[3], ARGV[4]
local fresh, touched = {}, {}
local i = 0
for record in string.gmatch(ARGV[5], '[^\n]+') do
  i = i + 1
  local seen = KEYS[string.byte(seen_index, i)]
  if redis.call('SADD', seen, string.sub(digests, i * 16 - 15, i * 16)) == 1 then
    fresh[#fresh + 1] = record
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
