-- Counts wrk's answers by status over all its threads; done() prints them as one JSON line.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  counts = {}
end

function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
  local total, parts = {}, {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("counts")) do total[status] = (total[status] or 0) + n end
  end
  for status, n in pairs(total) do table.insert(parts, string.format('"%d": %d', status, n)) end
  local errors = summary.errors
  io.write(string.format(
    'WRK {"seconds": %.3f, "statuses": {%s}, "p50_ms": %.3f, "p99_ms": %.3f, "socket_errors": %d}\n',
    summary.duration / 1e6, table.concat(parts, ", "), latency:percentile(50) / 1e3,
    latency:percentile(99) / 1e3, errors.connect + errors.read + errors.write + errors.timeout))
end
