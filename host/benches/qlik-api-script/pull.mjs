// What a straightforward script on Qlik's official SDK does to pull a tenant: every stream
// connector-host reads, with the same page sizes and filters, one request after another,
// following each listing with @qlik/api's `next()`. host/benches/qlik_speed.rs runs it
// against the same simulated tenant as the connector and compares the two.
//
// Usage: node pull.mjs <base URL> <API key>
// Prints one line of JSON: {"records": N, "pages": N, "seconds": S}.

import qlik from "@qlik/api";

const [baseUrl, apiKey] = process.argv.slice(2);
if (!baseUrl || !apiKey) {
  console.error("usage: node pull.mjs <base URL> <API key>");
  process.exit(2);
}
// @qlik/api takes a full URL as host, so the simulator's http://127.0.0.1:PORT works as is.
qlik.auth.setDefaultHostConfig({ authType: "apikey", host: baseUrl, apiKey });

let records = 0;
let pages = 0;

// @qlik/api does not retry; Qlik answers 429 with Retry-After (seconds) when a user is over
// the limit (https://qlik.dev/apis/rest/rate-limiting), so the script waits and asks again.
async function call(request) {
  for (;;) {
    try {
      pages += 1;
      return await request();
    } catch (error) {
      if (error?.status !== 429) throw error;
      const after = Number(error.headers?.get?.("retry-after") ?? 1);
      await new Promise((resolve) => setTimeout(resolve, Math.max(after, 1) * 1000));
    }
  }
}

/** Pages a listing to its end and returns every item. */
async function all(first) {
  const items = [];
  let page = await call(first);
  for (;;) {
    items.push(...(page.data?.data ?? []));
    if (!page.next) return items;
    const next = page.next;
    page = await call(() => next());
  }
}

/** Pages a listing to its end, counting its items. */
async function list(first) {
  const items = await all(first);
  records += items.length;
  return items;
}

/** Reads one object. */
async function one(request) {
  const response = await call(request);
  records += 1;
  return response.data;
}

const started = performance.now();
const statuses = ["active", "invited", "disabled", "deleted", "provisioned"];
// GET /tenants/me answers 302 to /tenants/{id}; @qlik/api follows it on Qlik Cloud.
const tenant = await one(() => qlik.tenants.getMyTenant());
await one(() => qlik.licenses.getLicenseStatus());
await list(() =>
  qlik.users.getUsers({ limit: 100, sort: "+id", filter: statuses.map((s) => `status eq "${s}"`).join(" or ") }),
);
await list(() => qlik.groups.getGroups({ limit: 100 }));
await list(() => qlik.roles.getRoles({ limit: 100 }));
await one(() => qlik.licenses.getLicenseOverview());
await list(() => qlik.licenses.getLicenseAssignments({ limit: 100 }));
await list(() => qlik.licenses.getLicenseConsumption({ limit: 200, sort: "+endTime" }));
await call(() => qlik.audits.getAuditsSettings());
const types = (await call(() => qlik.audits.getAuditTypes())).data?.data ?? [];
for (const eventType of types.filter((t) => t.includes("user-session"))) {
  await list(() => qlik.audits.getAudits({ eventType, sort: "+eventTime", limit: 100 }));
}
await one(() => qlik.licenses.getLicenseSettings());
for (const space of await list(() => qlik.spaces.getSpaces({ limit: 100 }))) {
  await list(() => qlik.spaces.getSpaceAssignments(space.id, { limit: 100 }));
}
await list(() => qlik.items.getItems({ resourceType: "app,qvapp", limit: 100 }));
await list(() => qlik.apiKeys.getApiKeys({ limit: 100 }));
await one(() => qlik.apiKeys.getApiKeysConfig(tenant.id));
await list(() => qlik.oauthClients.getOAuthClients({ limit: 100 }));
await list(() => qlik.quotas.getQuotas({ reportUsage: true }));
// A user-based tenant answers 404 here (nothing is metered by capacity): no records.
await list(() => qlik.consumption.getConsumptionExecutions({ limit: 200 })).catch((error) => {
  if (error?.status !== 404) throw error;
});
const seconds = (performance.now() - started) / 1000;
console.log(JSON.stringify({ records, pages, seconds }));
