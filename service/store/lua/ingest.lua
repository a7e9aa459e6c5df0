-- Accept a batch of traces atomically: dedupe by id digest, append only the new ones.
-- KEYS[1]    the tenant's stream
-- KEYS[2..]  the tenant's seen-sets, one per UTC day present in the batch
-- ARGV[1]    consumer group name (created with the stream, so no entry is ever missed)
-- ARGV[2]    seconds a seen-set lives after its last addition (the dedupe window)
-- ARGV[3]    per trace, one byte: the index in KEYS of its seen-set
-- ARGV[4]    per trace, 16 bytes: the digest of its id
-- ARGV[5]    per trace, one line: its counting key "day RS direction US connector US type US tls"
-- ARGV[6]    per trace, 13 digits: its time in epoch milliseconds
-- Blobs rather than arguments per trace, and SMISMEMBER + one SADD per set rather than a SADD
-- per trace: at 5,000 traces a call, per-trace commands cost more than everything else.
-- The new traces go to the stream as one entry: their number, the newest time, and how many
-- there are per counting key — all the fold needs, whatever the batch size.
-- Returns the number of new traces; the rest were duplicates.
local stream = KEYS[1]
if redis.call('EXISTS', stream) == 0 then
  redis.call('XGROUP', 'CREATE', stream, ARGV[1], '0', 'MKSTREAM')
end
local set_of, digests, epochs = ARGV[3], ARGV[4], ARGV[6]

local by_set = {}
for i = 1, #set_of do
  local k = string.byte(set_of, i)
  local positions = by_set[k]
  if not positions then
    positions = {}
    by_set[k] = positions
  end
  positions[#positions + 1] = i
end

local is_new = {}
for k, positions in pairs(by_set) do
  local seen, in_batch, added = KEYS[k], {}, 0
  for first = 1, #positions, 4000 do
    local last = math.min(first + 3999, #positions)
    local chunk = {}
    for j = first, last do
      local i = positions[j]
      chunk[#chunk + 1] = string.sub(digests, i * 16 - 15, i * 16)
    end
    local present = redis.call('SMISMEMBER', seen, unpack(chunk))
    local fresh = {}
    for j = 1, #chunk do
      local digest = chunk[j]
      if present[j] == 0 and not in_batch[digest] then
        in_batch[digest] = true
        fresh[#fresh + 1] = digest
        is_new[positions[first + j - 1]] = true
      end
    end
    if #fresh > 0 then
      redis.call('SADD', seen, unpack(fresh))
      added = added + #fresh
    end
  end
  if added > 0 then
    redis.call('EXPIRE', seen, ARGV[2])
  end
end

local counts, order, new, newest = {}, {}, 0, '0'
local i = 0
for key in string.gmatch(ARGV[5], '[^\n]+') do
  i = i + 1
  if is_new[i] then
    if counts[key] then
      counts[key] = counts[key] + 1
    else
      counts[key] = 1
      order[#order + 1] = key
    end
    new = new + 1
    local epoch = string.sub(epochs, i * 13 - 12, i * 13)
    if epoch > newest then newest = epoch end
  end
end
if new > 0 then
  local lines = {}
  for j, key in ipairs(order) do
    lines[j] = key .. '\t' .. counts[key]
  end
  redis.call('XADD', stream, '*', 'n', new, 'newest', newest, 'counts', table.concat(lines, '\n'))
end
return new
