// The Vercel AI SDK as its users call it, against the relay: node ai_sdk.mjs MODE
// RELAY_URL and RELAY_TOKEN say where and how; prints one JSON line with what the SDK saw.
import { generateText, streamText } from "ai";
import { createOpenAI } from "@ai-sdk/openai";

const provider = createOpenAI({ baseURL: `${process.env.RELAY_URL}/v1`, apiKey: process.env.RELAY_TOKEN });
const mode = process.argv[2];
// openai(model) speaks the Responses API; openai.chat(model) chat completions.
const model = mode.startsWith("chat") ? provider.chat("gpt-test") : provider("gpt-test");

async function main() {
  if (mode.endsWith("-generate")) {
    const result = await generateText({ model, prompt: "Hi", maxRetries: 0 });
    return { text: result.text, finishReason: result.finishReason, usage: result.usage };
  }
  if (mode.endsWith("-stream")) {
    const result = streamText({ model, prompt: "Hi", maxRetries: 0 });
    const parts = [];
    for await (const part of result.textStream) parts.push(part);
    return { parts, text: parts.join(""), finishReason: await result.finishReason };
  }
  if (mode.endsWith("-abort")) {
    const controller = new AbortController();
    const result = streamText({ model, prompt: "Hi", maxRetries: 0, abortSignal: controller.signal });
    const parts = [];
    try {
      for await (const part of result.textStream) {
        parts.push(part);
        if (parts.length === 2) controller.abort();
      }
    } catch (error) {
      return { aborted: true, parts, error: String(error) };
    }
    return { aborted: controller.signal.aborted, parts };
  }
  if (mode.endsWith("-tools")) {
    const { tool, jsonSchema } = await import("ai");
    const result = await generateText({
      model,
      prompt: "Weather in Paris?",
      maxRetries: 0,
      tools: {
        get_weather: tool({
          description: "The weather in a city.",
          inputSchema: jsonSchema({ type: "object", properties: { city: { type: "string" } }, required: ["city"] }),
        }),
      },
    });
    return { toolCalls: result.toolCalls.map((call) => ({ name: call.toolName, input: call.input })) };
  }
  throw new Error(`unknown mode ${mode}`);
}

main().then(
  (result) => console.log(JSON.stringify(result)),
  (error) => {
    console.log(JSON.stringify({ error: String(error), name: error?.name }));
    process.exitCode = 1;
  },
);
