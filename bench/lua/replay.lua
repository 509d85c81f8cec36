-- wrk script: every connection replays pre-signed raw HTTP/1.1 requests from a file, in turn.
-- The file (REPLAY_FILE) holds records "<length>\n<bytes>"; each thread loads it whole and starts
-- at its own offset, so threads do not send the same request at the same moment. done() prints
-- one line the harness parses: RESULT requests duration_us non_2xx_3xx connect read_write timeout.
local path = os.getenv("REPLAY_FILE")
local threads = 0

function setup(thread)
  thread:set("offset", threads)
  threads = threads + 1
end

local requests, count, next_index

function init(args)
  local file = assert(io.open(path, "rb"))
  requests = {}
  while true do
    local line = file:read("*l")
    if not line then break end
    requests[#requests + 1] = file:read(tonumber(line))
  end
  file:close()
  count = #requests
  next_index = (offset * 7919) % count
end

function request()
  next_index = next_index + 1
  if next_index > count then next_index = 1 end
  return requests[next_index]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d\n", summary.requests, summary.duration, e.status,
                         e.connect, e.read + e.write, e.timeout))
end
