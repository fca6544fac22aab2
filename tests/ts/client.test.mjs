// agent-bus as a client built on the official TypeScript MCP SDK sees it (Claude Code, Cursor
// and Gemini CLI are built on this SDK). Run by tests/test_ts_client.py with node --test:
// AGENT_BUS_ARGV is the JSON argv that starts a real server, AGENT_BUS_DB its database.
import { test } from "node:test";
import assert from "node:assert/strict";

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { DEFAULT_REQUEST_TIMEOUT_MSEC } from "@modelcontextprotocol/sdk/shared/protocol.js";
import Ajv2020 from "ajv/dist/2020.js";

const argv = JSON.parse(process.env.AGENT_BUS_ARGV);
const ajv = new Ajv2020({ strict: false, allErrors: true });

async function connect(name) {
  const transport = new StdioClientTransport({
    command: argv[0],
    args: argv.slice(1),
    env: { ...process.env },
    stderr: "pipe",
  });
  const client = new Client({ name, version: "1.0.0" });
  await client.connect(transport);
  const { tools } = await client.listTools();
  const validators = new Map(
    tools.filter((t) => t.outputSchema).map((t) => [t.name, ajv.compile(t.outputSchema)]),
  );
  // Every call uses the SDK's defaults (no timeout given), as a client built on it does.
  const call = async (tool, args) => {
    const result = await client.callTool({ name: tool, arguments: args });
    assert.ok(result.structuredContent, `${tool} returned no structuredContent`);
    if (result.isError) {
      assert.equal(typeof result.structuredContent.error.code, "string");
      return result;
    }
    const validate = validators.get(tool);
    assert.ok(validate, `${tool} has no outputSchema`);
    assert.ok(
      validate(result.structuredContent),
      `${tool} structuredContent does not match its outputSchema: ` +
        ajv.errorsText(validate.errors),
    );
    return result;
  };
  return { client, tools, call };
}

test("two agents review over the bus through the TypeScript SDK client", async () => {
  const reviewer = await connect("ts-reviewer");
  const author = await connect("ts-author");
  try {
    const names = reviewer.tools.map((t) => t.name).sort();
    for (const name of ["ping", "topic_create", "topic_join", "sync", "messages_search"]) {
      assert.ok(names.includes(name), `tools/list lacks ${name}`);
    }
    for (const tool of reviewer.tools) {
      assert.ok(tool.outputSchema, `${tool.name} declares no outputSchema`);
    }

    // The sync a client leaves wait_seconds out of must come back within the SDK's
    // default request timeout: advertised and real. It runs beside the exchange below.
    const waitDefault = reviewer.tools.find((t) => t.name === "sync").inputSchema.properties
      .wait_seconds.default;
    assert.ok(waitDefault * 1000 < DEFAULT_REQUEST_TIMEOUT_MSEC, `default wait ${waitDefault} s`);
    const quiet = (await reviewer.call("topic_create", { name: "quiet", mode: "new" }))
      .structuredContent;
    await reviewer.call("topic_join", { agent_name: "listener", topic_id: quiet.topic_id });
    const omittedWait = reviewer.call("sync", { topic_id: quiet.topic_id });

    await reviewer.call("ping", {});
    const topic = (await reviewer.call("topic_create", { name: "review-ts", mode: "new" }))
      .structuredContent;
    await reviewer.call("topic_join", { agent_name: "reviewer", topic_id: topic.topic_id });
    await author.call("topic_join", { agent_name: "author", name: "review-ts" });

    const asked = await reviewer.call("sync", {
      topic_id: topic.topic_id,
      wait_seconds: 0,
      outbox: [{ content_markdown: "Please review the retry change.", message_type: "question" }],
    });
    const question = asked.structuredContent.sent[0].message;

    const got = await author.call("sync", { topic_id: topic.topic_id, wait_seconds: 10 });
    assert.equal(got.structuredContent.status, "ready");
    assert.equal(got.structuredContent.received[0].message_id, question.message_id);

    // The reviewer long-polls; the author's answer wakes it.
    const waiting = reviewer.call("sync", { topic_id: topic.topic_id, wait_seconds: 30 });
    await author.call("sync", {
      topic_id: topic.topic_id,
      wait_seconds: 0,
      outbox: [
        {
          content_markdown: "Looks good: backoff doubles and caps.",
          message_type: "answer",
          reply_to: question.message_id,
        },
      ],
    });
    const answer = (await waiting).structuredContent;
    assert.equal(answer.status, "ready");
    assert.equal(answer.received[0].reply_to, question.message_id);

    await reviewer.call("topic_list", { status: "all" });
    await reviewer.call("topic_resolve", { name: "review-ts" });
    await reviewer.call("topic_presence", { topic_id: topic.topic_id });
    await reviewer.call("messages_search", { query: "backoff", mode: "fts" });
    await reviewer.call("cursor_reset", { topic_id: topic.topic_id, last_seq: 0 });
    const failed = await reviewer.call("sync", { topic_id: "no-such-topic", wait_seconds: 0 });
    assert.equal(failed.isError, true);
    await reviewer.call("topic_close", { topic_id: topic.topic_id, reason: "approved" });

    // Protocol-level mistakes are answered as invalid params, and the session goes on.
    const { prompts } = await reviewer.client.listPrompts();
    assert.ok(prompts.length > 0, "no prompts listed");
    await assert.rejects(reviewer.client.getPrompt({ name: "no_such_prompt" }), (err) => {
      assert.equal(err.code, -32602);
      return true;
    });
    await reviewer.call("ping", {});

    const timedOut = (await omittedWait).structuredContent;
    assert.equal(timedOut.status, "timeout");
  } finally {
    await reviewer.client.close();
    await author.client.close();
  }
});
