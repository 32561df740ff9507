-- wrk_tokens.lua - requests published challenge tokens in turn and checks
-- every answer (used by bench_agent_http.py).
--   wrk ... -s wrk_tokens.lua URL -- PREFIX HOST THUMBPRINT TOKENS_FILE
-- A right answer is 200 with "<a published token>.<THUMBPRINT>". The last
-- line wrk prints is `RESULT key=value ...` (latencies in microseconds).

local threads = {}
local reqs, published = {}, {}
local n, i = 0, 0
local suffix

-- Globals: done() reads them from each thread with thread:get().
ok, bad, non200 = 0, 0, 0

function setup(thread)
	table.insert(threads, thread)
end

function init(args)
	local prefix, host, thumb, file = args[1], args[2], args[3], args[4]
	local headers = { Host = host }
	suffix = "." .. thumb
	for tok in io.lines(file) do
		n = n + 1
		published[tok] = true
		reqs[n] = wrk.format("GET", prefix .. tok, headers)
	end
	-- threads and connections start at different tokens
	i = math.random(n) - 1
end

function request()
	i = i % n + 1
	return reqs[i]
end

function response(status, headers, body)
	if status ~= 200 then
		non200 = non200 + 1
	elseif #body > #suffix and body:sub(-#suffix) == suffix
	    and published[body:sub(1, #body - #suffix)] then
		ok = ok + 1
	else
		bad = bad + 1
	end
end

function done(summary, latency, requests)
	local o, b, x = 0, 0, 0
	for _, t in ipairs(threads) do
		o = o + t:get("ok")
		b = b + t:get("bad")
		x = x + t:get("non200")
	end
	local e = summary.errors
	io.write(string.format(
	    "RESULT requests=%d seconds=%.3f rps=%.1f p50_us=%d p99_us=%d max_us=%d " ..
	    "ok=%d bad=%d non200=%d err_connect=%d err_read=%d err_write=%d " ..
	    "err_timeout=%d\n",
	    summary.requests, summary.duration / 1e6,
	    summary.requests / (summary.duration / 1e6),
	    latency:percentile(50), latency:percentile(99), latency.max,
	    o, b, x, e.connect, e.read, e.write, e.timeout))
end
