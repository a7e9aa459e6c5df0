-- Accept a batch of traces atomically: dedupe by id digest, append only the new ones.
-- KEYS[1]    the tenant's stream
-- KEYS[2]    the seen-bucket of today's acceptances (by the service's clock): new ids go here
-- KEYS[3..]  the other seen-buckets of the dedupe window (the days before, and tomorrow's
--            for a host whose clock runs ahead around midnight): read, never written
-- ARGV[1]    consumer group name (created with the stream, so no entry is ever missed)
-- ARGV[2]    seconds today's bucket must live (until no lookup reads it)
-- ARGV[3]    per trace, 16 bytes: the digest of its id
-- ARGV[4]    per trace, one line: its counting key "day RS direction US connector US type US tls"
-- ARGV[5]    per trace, 13 digits: its time in epoch milliseconds
-- ARGV[6]    optional, per trace, one line: its who key (remote domain, SMTP AUTH user; see
--            service.core.traces.who_key), counted for the new traces like ARGV[4], as 'who'
-- A trace is new when no bucket holds its digest and no earlier trace of the batch has it,
-- whatever day its timestamp names. Blobs rather than arguments per trace, and SMISMEMBER per
-- bucket + one SADD rather than a command per trace: at 5,000 traces a call, per-trace
-- commands cost more than everything else.
-- The new traces go to the stream as one entry: their number, the newest time, and how many
-- there are per counting key — all the fold needs, whatever the batch size.
-- Returns the number of new traces; the rest were duplicates.

-- "line TAB count" lines of the lines of ``per_trace`` whose trace is new, in first-seen order.
local function count_new_lines(per_trace, is_new)
  local counts, order, i = {}, {}, 0
  for line in string.gmatch(per_trace, '[^\n]+') do
    i = i + 1
    if is_new[i] then
      if counts[line] then
        counts[line] = counts[line] + 1
      else
        counts[line] = 1
        order[#order + 1] = line
      end
    end
  end
  local out = {}
  for j, line in ipairs(order) do
    out[j] = line .. '\t' .. counts[line]
  end
  return table.concat(out, '\n')
end

local stream = KEYS[1]
if redis.call('EXISTS', stream) == 0 then
  redis.call('XGROUP', 'CREATE', stream, ARGV[1], '0', 'MKSTREAM')
end
local digests, epochs = ARGV[3], ARGV[5]

-- Positions of the traces no bucket knows, in batch order, narrowed bucket by bucket.
local digest_of, unknown = {}, {}
for i = 1, #digests / 16 do
  digest_of[i] = string.sub(digests, i * 16 - 15, i * 16)
  unknown[i] = i
end
for k = 2, #KEYS do
  if #unknown == 0 then
    break
  end
  if redis.call('EXISTS', KEYS[k]) == 1 then
    local still = {}
    for first = 1, #unknown, 4000 do
      local chunk = {}
      for j = first, math.min(first + 3999, #unknown) do
        chunk[#chunk + 1] = digest_of[unknown[j]]
      end
      local present = redis.call('SMISMEMBER', KEYS[k], unpack(chunk))
      for j = 1, #chunk do
        if present[j] == 0 then
          still[#still + 1] = unknown[first + j - 1]
        end
      end
    end
    unknown = still
  end
end

-- Of the unknown ones, the first trace of each id is new; later copies are duplicates.
local is_new, in_batch, fresh = {}, {}, {}
for _, i in ipairs(unknown) do
  local digest = digest_of[i]
  if not in_batch[digest] then
    in_batch[digest] = true
    fresh[#fresh + 1] = digest
    is_new[i] = true
  end
end
if #fresh > 0 then
  for first = 1, #fresh, 4000 do
    redis.call('SADD', KEYS[2], unpack(fresh, first, math.min(first + 3999, #fresh)))
  end
  redis.call('EXPIRE', KEYS[2], ARGV[2])
end

local new, newest = #fresh, '0'
for i in pairs(is_new) do
  local epoch = string.sub(epochs, i * 13 - 12, i * 13)
  if epoch > newest then newest = epoch end
end
if new > 0 then
  local entry = {'n', new, 'newest', newest, 'counts', count_new_lines(ARGV[4], is_new)}
  if ARGV[6] and ARGV[6] ~= '' then
    entry[#entry + 1] = 'who'
    entry[#entry + 1] = count_new_lines(ARGV[6], is_new)
  end
  redis.call('XADD', stream, '*', unpack(entry))
end
return new
