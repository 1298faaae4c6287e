// Drives `specsteer edge serve` with the official openai client: one
// non-streaming and one streaming chat completion with the same seed, then
// prints {"text", "streamed", "usage", "specsteer"} as one JSON line.
//   node client.mjs http://127.0.0.1:PORT/v1 MAX_TOKENS [API_KEY]
import OpenAI from "openai";

const [baseURL, maxTokens, apiKey] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: apiKey ?? "unused-on-loopback", maxRetries: 0 });
const request = {
  model: "edge",
  messages: [
    { role: "system", content: "You are terse." },
    { role: "user", content: "Write a short review of the film you saw this weekend." },
  ],
  max_tokens: Number(maxTokens),
  seed: 7,
};
const plain = await client.chat.completions.create(request);
let streamed = "";
const stream = await client.chat.completions.create({ ...request, stream: true });
for await (const chunk of stream) streamed += chunk.choices[0]?.delta?.content ?? "";
let error = null;
try {
  await client.chat.completions.create({ ...request, max_tokens: 0 });
} catch (e) {
  error = { status: e.status, message: e.message };
}
console.log(JSON.stringify({
  text: plain.choices[0].message.content,
  streamed,
  usage: plain.usage,
  specsteer: plain.specsteer,
  error,
}));
