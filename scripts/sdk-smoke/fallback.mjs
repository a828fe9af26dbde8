// The official OpenAI SDK (its own retries off) against a route whose first target always fails:
// it must see ordinary answers, the attempts in the headers, and the provider's error only when
// every attempt failed. Setup (from the repository root):
//   build/sluice-mock-upstream --port 9101 --fault '{"status":500}' &
//   build/sluice-mock-upstream --port 9102 &
//   build/sluice --config scripts/sdk-smoke/fallback.yaml &
//   then, in a folder with `npm i openai` done, copy this file there and `node fallback.mjs`
import OpenAI from "openai";
const client = new OpenAI({ baseURL: process.env.BASE_URL ?? "http://127.0.0.1:8080/v1", apiKey: "unused", maxRetries: 0 });

const r = await client.chat.completions.create({ model: "smart", messages: [{ role: "user", content: "hi" }] }).withResponse();
console.log("non-stream:", r.response.headers.get("x-sluice-provider"), "attempts", r.response.headers.get("x-sluice-attempts"),
            JSON.stringify(r.data.choices[0].message.content));

const s = await client.chat.completions.create({ model: "smart", stream: true, stream_options: { include_usage: true },
                                                 messages: [{ role: "user", content: "hello there" }] });
let text = "", usage = null;
for await (const c of s) { text += c.choices[0]?.delta?.content ?? ""; if (c.usage) usage = c.usage; }
console.log("stream:", JSON.stringify(text), JSON.stringify(usage));

try {
  await client.chat.completions.create({ model: "down", messages: [{ role: "user", content: "hi" }] });
  console.log("all down: unexpectedly answered");
} catch (e) {
  console.log("all down:", e.status, e.code, e.message);
}
