-- wrk script for bench/ingest.sh --tool wrk: POSTs pre-encoded OTLP/HTTP protobuf bodies written by
-- `sessiontrace loadgen --write-bodies N --bodies-dir DIR`, cycling through them, and prints a JSON summary
-- in the shape of `sessiontrace loadgen --json` (spans counted from 2xx answers).
--   BODIES_DIR=DIR BODIES=N SPANS_PER_BODY=200 [INGEST_KEY=k] wrk -s bench/ingest-wrk.lua http://host:port/v1/traces

local dir = os.getenv("BODIES_DIR")
local count = tonumber(os.getenv("BODIES"))
local spans_per_body = tonumber(os.getenv("SPANS_PER_BODY"))
local requests = {}
local next_request = 1

function init(args)
  local headers = { ["Content-Type"] = "application/x-protobuf" }
  local key = os.getenv("INGEST_KEY")
  if key and key ~= "" then headers["Authorization"] = "Bearer " .. key end
  -- Each wrk thread starts at a different body.
  next_request = math.random(count)
  for i = 0, count - 1 do
    local file = assert(io.open(dir .. "/body-" .. i .. ".bin", "rb"))
    local body = file:read("*a")
    file:close()
    requests[#requests + 1] = wrk.format("POST", nil, headers, body)
  end
end

function request()
  local r = requests[next_request]
  next_request = next_request % #requests + 1
  return r
end

function done(summary, latency, _)
  local e = summary.errors
  local failed = e.status + e.connect + e.read + e.write + e.timeout
  local accepted = (summary.requests - e.status) * spans_per_body
  local seconds = summary.duration / 1e6
  io.write(string.format(
    '{"spans_accepted": %d, "seconds": %.3f, "accepted_spans_per_second": %.1f, "requests": %d, "errors": %d, ' ..
    '"latency_ms": {"p50": %.3f, "p90": %.3f, "p99": %.3f, "max": %.3f}}\n',
    accepted, seconds, accepted / seconds, summary.requests, failed,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
