// The official Anthropic SDK against sluice's /v1/messages front door.
// BASE_URL (without /v1), KEY, MODEL: a model routed to any provider (translated unless Anthropic).
import Anthropic from "@anthropic-ai/sdk";
const client = new Anthropic({ baseURL: process.env.BASE_URL ?? "http://127.0.0.1:8080", apiKey: process.env.KEY ?? "unused" });
const model = process.env.MODEL ?? "mock-gpt-4o";
const m = await client.messages.create({ model, max_tokens: 200, system: "Be brief.", messages: [{ role: "user", content: "Hello from the Anthropic SDK" }] });
console.log("message     ", m.content[0].text, JSON.stringify(m.usage));
const stream = client.messages.stream({ model, max_tokens: 200, messages: [{ role: "user", content: "Stream please" }] });
stream.on("text", () => {});
const final = await stream.finalMessage();
console.log("stream      ", final.content.map((b) => b.text ?? "").join(""), final.stop_reason, JSON.stringify(final.usage));
const tools = [{ name: "get_weather", description: "weather", input_schema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } }];
const ts = await client.messages.stream({ model, max_tokens: 200, tools, messages: [{ role: "user", content: "weather in Oslo?" }] }).finalMessage();
const use = ts.content.find((b) => b.type === "tool_use");
console.log("tool stream ", JSON.stringify(use), ts.stop_reason);
const after = await client.messages.create({ model, max_tokens: 200, tools, messages: [
  { role: "user", content: "weather in Oslo?" }, { role: "assistant", content: ts.content },
  { role: "user", content: [{ type: "tool_result", tool_use_id: use.id, content: "4C, snow" }] }] });
console.log("tool result ", after.content[0].text, after.stop_reason);
