// The official OpenAI SDK through every endpoint sluice serves. BASE_URL, KEY, MODEL, EMBED_MODEL.
import OpenAI from "openai";
const baseURL = process.env.BASE_URL ?? "http://127.0.0.1:8080/v1";
const model = process.env.MODEL ?? "mock-gpt-4o";
const embedModel = process.env.EMBED_MODEL ?? "mock-embedding";
const client = new OpenAI({ baseURL, apiKey: process.env.KEY ?? "unused" });
const out = (k, v) => console.log(k.padEnd(22), typeof v === "string" ? v : JSON.stringify(v));

const r = await client.chat.completions.create({ model, messages: [{ role: "user", content: "Hello sluice" }] });
out("chat", r.choices[0].message.content);
out("chat usage", r.usage);

const stream = await client.chat.completions.create({ model, stream: true, messages: [{ role: "user", content: "Stream please" }] });
let text = "", chunks = 0;
for await (const c of stream) { chunks++; text += c.choices[0]?.delta?.content ?? ""; }
out("stream", `${chunks} chunks: ${text}`);

const s2 = await client.chat.completions.create({ model, stream: true, stream_options: { include_usage: true }, messages: [{ role: "user", content: "count me" }] });
let usage = null; for await (const c of s2) { if (c.usage) usage = c.usage; }
out("stream usage", usage);

const tools = [{ type: "function", function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } } }];
const ts = client.beta.chat.completions.stream({ model, tools, messages: [{ role: "user", content: "weather in Paris?" }] });
const final = await ts.finalChatCompletion();
out("tool call (stream)", final.choices[0].message.tool_calls);
const tn = await client.chat.completions.create({ model, tools, messages: [{ role: "user", content: "weather?" }] });
out("tool call", tn.choices[0].message.tool_calls[0].function);

const comp = await client.completions.create({ model, prompt: "Say this is a test" });
out("completion", comp.choices[0].text);
const cs = await client.completions.create({ model, prompt: "stream it", stream: true });
let ctext = ""; for await (const c of cs) ctext += c.choices[0]?.text ?? "";
out("completion stream", ctext);

const e1 = await client.embeddings.create({ model: embedModel, input: "hello" });
out("embedding (sdk default)", `${e1.data[0].embedding.length} dims, first ${e1.data[0].embedding[0]}`);
const e2 = await client.embeddings.create({ model: embedModel, input: ["a", "b"], encoding_format: "float" });
out("embedding float", `${e2.data.length} vectors x ${e2.data[0].embedding.length}`);

const models = await client.models.list();
out("models", models.data.map((m) => m.id));
try {
  await client.chat.completions.create({ model: "no-such-model", messages: [{ role: "user", content: "x" }] });
} catch (e) { out("unknown model", `${e.status} ${e.code}: ${e.message}`); }
