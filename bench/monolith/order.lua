-- order.lua makes wrk place orders: POST /api/orders with two lines each,
-- cycling through the seeded customers (ids 1 to 20) and the SKUs given
-- after "--" on the wrk command line, so that the load spreads over many
-- stock levels as real traffic does rather than fighting over one row.
--
--   wrk -s order.lua http://127.0.0.1:9001 -- 20 COF-ETH-250,COF-COL-250,...
--
-- Every answer that is not 2xx is counted per thread, and done() prints the
-- total and the first such answer, so that a run that measured errors (out
-- of stock, a bad body) cannot pass for a fast one.

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  customers = tonumber(args[1]) or 20
  skus = {}
  for sku in string.gmatch(args[2] or "", "[^,]+") do
    table.insert(skus, sku)
  end
  if #skus < 2 then
    error("order.lua: give the customer count and at least two SKUs after --")
  end
  -- Each thread starts at a different place in the cycles, so that the
  -- threads do not all order the same products at the same moment.
  n = id * 7919
  ok = 0
  non2xx = 0
  first_error = ""
  headers = { ["Content-Type"] = "application/json" }
end

function request()
  n = n + 1
  local k = #skus
  -- The second line is 1 to k-1 places after the first, a distance that
  -- changes every round, so the pairs vary and never repeat a SKU.
  local a = skus[(n % k) + 1]
  local b = skus[((n + 1 + math.floor(n / k) % (k - 1)) % k) + 1]
  local body = string.format(
    '{"customer_id":%d,"lines":[{"sku":"%s","quantity":1},{"sku":"%s","quantity":2}]}',
    (n % customers) + 1, a, b)
  return wrk.format("POST", "/api/orders", headers, body)
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    ok = ok + 1
  else
    non2xx = non2xx + 1
    if first_error == "" then
      first_error = status .. " " .. string.sub(body or "", 1, 300)
    end
  end
end

function done(summary, latency, requests)
  local total_ok, total_bad, first = 0, 0, ""
  for _, t in ipairs(threads) do
    total_ok = total_ok + t:get("ok")
    total_bad = total_bad + t:get("non2xx")
    local e = t:get("first_error")
    if first == "" and e ~= nil then
      first = e
    end
  end
  io.write(string.format("orders: %d placed, %d not 2xx\n", total_ok, total_bad))
  if first ~= "" then
    io.write("first not-2xx answer: " .. first .. "\n")
  end
end
