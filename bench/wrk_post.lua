-- wrk script for bench/run.sh: POST the body sender sends (the file named
-- by $BENCH_BODY, one line "id=1&message=...") with sender's content type.
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a"):gsub("[\r\n]+$", "")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
f:close()
