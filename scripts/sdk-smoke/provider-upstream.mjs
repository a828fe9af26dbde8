// The official OpenAI SDK against a route served by a translating provider (kind: anthropic or
// gemini): chat, stream with usage, a streamed tool call and the tool-result turn. BASE_URL, KEY, MODEL.
import OpenAI from "openai";
const client = new OpenAI({ baseURL: process.env.BASE_URL ?? "http://127.0.0.1:8080/v1", apiKey: process.env.KEY ?? "unused" });
const model = process.env.MODEL ?? "claude-sonnet-4-5";
const r = await client.chat.completions.create({ model, messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Hello Claude" }] });
console.log("chat        ", r.choices[0].message.content, JSON.stringify(r.usage));
const s = await client.chat.completions.create({ model, stream: true, stream_options: { include_usage: true }, messages: [{ role: "user", content: "Stream please" }] });
let text = "", usage = null; for await (const c of s) { text += c.choices[0]?.delta?.content ?? ""; if (c.usage) usage = c.usage; }
console.log("stream      ", text, JSON.stringify(usage));
const tools = [{ type: "function", function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } } }];
const ts = client.chat.completions.stream({ model, tools, messages: [{ role: "user", content: "weather in Paris?" }] });
const final = await ts.finalChatCompletion();
console.log("tool stream ", JSON.stringify(final.choices[0].message.tool_calls), final.choices[0].finish_reason);
const call = final.choices[0].message.tool_calls[0];
const follow = await client.chat.completions.create({ model, tools, messages: [{ role: "user", content: "weather in Paris?" }, final.choices[0].message, { role: "tool", tool_call_id: call.id, content: "18C" }] });
console.log("tool result ", follow.choices[0].message.content);
