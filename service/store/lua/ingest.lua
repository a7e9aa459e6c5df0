-- Accept a batch of traces atomically: dedupe by id digest, append only the new ones.
-- KEYS[1]    the tenant's stream
-- KEYS[2]    the seen-bucket of today's acceptances (by the service's clock): new ids go here
-- KEYS[3..]  the other seen-buckets of the dedupe window (the days before, and tomorrow's
--            for a host whose clock runs ahead around midnight): read, never written
-- ARGV[1]    consumer group name (created with the stream, so no entry is ever missed)
-- ARGV[2]    seconds today's bucket must live (until no lookup reads it)
-- ARGV[3]    per trace, 16 bytes: the digest of its id (the caller sends each id once: its
--            first trace; the later ones are duplicates)
-- ARGV[4]    the batch's counts, "counting key TAB count" lines ("day RS direction US
--            connector US type US tls"), as if every trace were new
-- ARGV[5]    per trace, 13 digits: its time in epoch milliseconds
-- ARGV[6]    optional: the batch's who counts likewise (remote domain, SMTP AUTH user; see
--            service.core.traces.who_key), counted as 'who' ('' for none)
-- ARGV[7]    per trace, 3 bytes (big-endian): the number of its line in ARGV[4]
-- ARGV[8]    with ARGV[6], per trace, 3 bytes: the number of its line in ARGV[6]
-- ARGV[9]    the newest time in the batch, 13 digits
-- ARGV[10]   3 bytes each: the positions (from 1) of the traces of that time
-- A trace is new when no bucket holds its digest, whatever day its timestamp names. Blobs
-- rather than arguments per trace, and SMISMEMBER per bucket + one SADD rather than a command
-- per trace: at 5,000 traces a call, per-trace commands cost more than everything else. The
-- counts come made for the whole batch; the known traces (usually one, or all: a resend) are
-- taken off them here, so the work per trace beyond the lookups is reading a few bytes.
-- The new traces go to the stream as one entry: their number, the newest time, and how many
-- there are per counting key — all the fold needs, whatever the batch size.
-- Returns the number of new traces; the rest were duplicates.

-- The number a trace's 3 bytes at ``at`` give.
local function number_at(numbers, at)
  local a, b, c = string.byte(numbers, at * 3 - 2, at * 3)
  return a * 65536 + b * 256 + c
end

-- The "line TAB count" lines of ``counts`` less the traces not new (``is_new`` false among
-- the ``n``), each trace naming its line by number in ``numbers``; lines left at 0 go.
local function without_known(counts, numbers, is_new, n)
  local less = {}
  for i = 1, n do
    if not is_new[i] then
      local k = number_at(numbers, i)
      less[k] = (less[k] or 0) + 1
    end
  end
  local out, k = {}, 0
  for line in string.gmatch(counts, '[^\n]+') do
    k = k + 1
    if less[k] then
      local tab = string.find(line, '\t%d+$')  -- before the count, as core/fold.py splits
      local count = tonumber(string.sub(line, tab + 1)) - less[k]
      if count > 0 then
        out[#out + 1] = string.sub(line, 1, tab) .. count
      end
    else
      out[#out + 1] = line
    end
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

-- The unknown ones are new (the caller sent each id once).
local is_new, fresh = {}, {}
for _, i in ipairs(unknown) do
  fresh[#fresh + 1] = digest_of[i]
  is_new[i] = true
end
local n, new = #digests / 16, #fresh
if new == 0 then
  return 0
end
for first = 1, new, 4000 do
  redis.call('SADD', KEYS[2], unpack(fresh, first, math.min(first + 3999, new)))
end
redis.call('EXPIRE', KEYS[2], ARGV[2])

local counts, who, newest = ARGV[4], ARGV[6], nil
if new < n then
  counts = without_known(counts, ARGV[7], is_new, n)
  if who and who ~= '' then
    who = without_known(who, ARGV[8], is_new, n)
  end
end
for j = 1, #ARGV[10] / 3 do  -- the newest time of a new trace: usually the batch's
  if is_new[number_at(ARGV[10], j)] then
    newest = ARGV[9]
    break
  end
end
if not newest then  -- every trace of the batch's newest time was known
  newest = '0'
  for i in pairs(is_new) do
    local epoch = string.sub(epochs, i * 13 - 12, i * 13)
    if epoch > newest then newest = epoch end
  end
end
local entry = {'n', new, 'newest', newest, 'counts', counts}
if who and who ~= '' then
  entry[#entry + 1] = 'who'
  entry[#entry + 1] = who
end
redis.call('XADD', stream, '*', unpack(entry))
return new
