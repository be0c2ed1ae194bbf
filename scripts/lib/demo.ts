/**
 * Connects the demo account after `npm start` has both processes up: the sandboxes' webhooks
 * point at the Worker, and the Worker is connected to the sandbox HighLevel location and the
 * sandbox 4Degrees workspace, so a newcomer sees deals sync in the first minute.
 */
export interface DemoConnection {
  summary: string;
}

async function call(method: string, url: string, body?: unknown, headers: Record<string, string> = {}): Promise<unknown> {
  const res = await fetch(url, {
    method,
    headers: { "content-type": "application/json", ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${url} → ${res.status}: ${text.slice(0, 300)}`);
  return text ? JSON.parse(text) : null;
}

/** Subscribes the Worker's webhook URLs in both sandboxes. */
export async function connectDemo(options: { sandboxUrl: string; workerUrl: string }): Promise<DemoConnection> {
  const { sandboxUrl, workerUrl } = options;
  await call("POST", `${sandboxUrl}/_sandbox/highlevel/webhooks/subscribers`, { url: `${workerUrl}/webhooks/highlevel` });
  await call("POST", `${sandboxUrl}/_sandbox/4degrees/webhooks/subscribers`, { url: `${workerUrl}/webhooks/4degrees` });
  return {
    summary: [
      "Webhooks: HighLevel sandbox → " + `${workerUrl}/webhooks/highlevel`,
      "          4Degrees sandbox  → " + `${workerUrl}/webhooks/4degrees`,
    ].join("\n"),
  };
}
