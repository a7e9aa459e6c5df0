-- Accept a batch of traces atomically: dedupe by id digest, append only the new ones.
-- KEYS[1]    the tenant's stream
-- KEYS[2..]  the seen-buckets of the dedupe window (store/seen_buckets.py), G per acceptance
--            day, G the number of digest prefixes the batch holds, in one order on every day:
--            today's (by the service's clock; new ids go there), then the days before, then
--            tomorrow's (for a host whose clock runs ahead around midnight): read, never written
-- ARGV[1]    consumer group name (created with the stream, so no entry is ever missed)
-- ARGV[2]    seconds today's buckets must live (until no lookup reads them)
-- ARGV[3]    the ids: "n LF", n bytes (each trace's prefix index, 0..G-1), then the n integer
--            members separated by spaces
-- ARGV[4]    per trace, one line: its counting key "day RS direction US connector US type US tls"
-- ARGV[5]    per trace, 13 digits: its time in epoch milliseconds
-- ARGV[6]    optional, per trace, one line: its who key (remote domain, SMTP AUTH user; see
--            service.core.traces.who_key), counted for the new traces like ARGV[4], as 'who'
-- A trace is new when no bucket holds its id and no earlier trace of the batch has it,
-- whatever day its timestamp names. Blobs rather than arguments per trace, and SMISMEMBER per
-- bucket + one SADD per prefix rather than a command per trace: at 5,000 traces a call,
-- per-trace commands cost more than everything else.
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
local ids, epochs = ARGV[3], ARGV[5]
local header = string.find(ids, '\n', 1, true)
local n = tonumber(string.sub(ids, 1, header - 1))

-- Each trace's prefix index and member; every index 1..G occurs.
local prefix_of, member_of, groups, seen_group = {}, {}, 0, {}
local i = 0
for member in string.gmatch(string.sub(ids, header + n + 1), '%S+') do
  i = i + 1
  local g = string.byte(ids, header + i) + 1
  prefix_of[i] = g
  member_of[i] = member
  if not seen_group[g] then
    seen_group[g] = true
    groups = groups + 1
  end
end

-- Positions of the traces no bucket knows, per prefix index, in batch order, narrowed day by day.
local unknown = {}
for g = 1, groups do
  unknown[g] = {}
end
for j = 1, n do
  local list = unknown[prefix_of[j]]
  list[#list + 1] = j
end
for day = 0, (#KEYS - 1) / groups - 1 do
  local first_key = 2 + day * groups
  -- One EXISTS for the whole day: tomorrow's buckets, and the days a tenant sent nothing, cost
  -- one call.
  if redis.call('EXISTS', unpack(KEYS, first_key, first_key + groups - 1)) > 0 then
    for g = 1, groups do
      local positions, still = unknown[g], {}
      for first = 1, #positions, 4000 do
        local chunk = {}
        for j = first, math.min(first + 3999, #positions) do
          chunk[#chunk + 1] = member_of[positions[j]]
        end
        local present = redis.call('SMISMEMBER', KEYS[first_key + g - 1], unpack(chunk))
        for j = 1, #chunk do
          if present[j] == 0 then
            still[#still + 1] = positions[first + j - 1]
          end
        end
      end
      unknown[g] = still
    end
  end
end

-- Of the unknown ones, the first trace of each id is new; later copies are duplicates.
local is_new, new = {}, 0
for g = 1, groups do
  local in_batch, fresh = {}, {}
  for _, j in ipairs(unknown[g]) do
    local member = member_of[j]
    if not in_batch[member] then
      in_batch[member] = true
      fresh[#fresh + 1] = member
      is_new[j] = true
    end
  end
  if #fresh > 0 then
    for first = 1, #fresh, 4000 do
      redis.call('SADD', KEYS[1 + g], unpack(fresh, first, math.min(first + 3999, #fresh)))
    end
    redis.call('EXPIRE', KEYS[1 + g], ARGV[2])
    new = new + #fresh
  end
end

local newest = '0'
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
