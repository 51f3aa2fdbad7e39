-- POST /telegram/{shop}: one Telegram text update per request, unique update_id (a counter per
-- wrk thread, offset by UPDATE_BASE), chat ids spread over CHATS private chats from CHAT_BASE.
-- Environment: TG_SECRET (webhook secret header), TG_TEXT (JSON-escaped message text).
-- Used by bench/channels_throughput.py; run with -t1 (one counter).
package.path = "bench/wrk/?.lua;" .. package.path
require "_report"

local secret = os.getenv("TG_SECRET") or ""
local text = os.getenv("TG_TEXT") or "hello"
local base = tonumber(os.getenv("UPDATE_BASE") or "1")
local chats = tonumber(os.getenv("CHATS") or "2000")
local chat_base = tonumber(os.getenv("CHAT_BASE") or "100000")
local counter = 0
local headers = { ["Content-Type"] = "application/json", ["X-Telegram-Bot-Api-Secret-Token"] = secret }
local template = '{"update_id":%d,"message":{"message_id":%d,"from":{"id":%d,"is_bot":false,' ..
  '"first_name":"Bench","language_code":"zh-hans"},"chat":{"id":%d,"type":"private","first_name":"Bench"},' ..
  '"date":%d,"text":"%s"}}'

function request()
  counter = counter + 1
  local update_id = base + counter
  local chat = chat_base + (update_id % chats)
  local body = string.format(template, update_id, update_id, chat, chat, os.time(), text)
  return wrk.format("POST", nil, headers, body)
end
