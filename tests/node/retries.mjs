// One call of a Node client, with its default retries, against the relay: node retries.mjs CLIENT MODEL
// CLIENT is "openai" (the openai package) or "ai-sdk" (the Vercel AI SDK's chat model);
// RELAY_URL and RELAY_TOKEN say where and how. Prints one JSON line: the text, or the error.
import OpenAI from "openai";
import { generateText } from "ai";
import { createOpenAI } from "@ai-sdk/openai";

const [client, model] = process.argv.slice(2);
const baseURL = `${process.env.RELAY_URL}/v1`;
const apiKey = process.env.RELAY_TOKEN;

async function main() {
  if (client === "openai") {
    const openai = new OpenAI({ baseURL, apiKey }); // maxRetries: 2, the default
    const completion = await openai.chat.completions.create({ model, messages: [{ role: "user", content: "Hi" }] });
    return { text: completion.choices[0].message.content };
  }
  if (client === "ai-sdk") {
    const provider = createOpenAI({ baseURL, apiKey });
    const result = await generateText({ model: provider.chat(model), prompt: "Hi" }); // maxRetries: 2, the default
    return { text: result.text };
  }
  throw new Error(`unknown client ${client}`);
}

main().then(
  (result) => console.log(JSON.stringify(result)),
  (error) => {
    const status = error?.status ?? error?.statusCode ?? error?.lastError?.statusCode ?? null;
    console.log(JSON.stringify({ error: String(error), status }));
    process.exitCode = 1;
  },
);
