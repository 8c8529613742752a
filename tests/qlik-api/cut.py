"""Cuts Qlik's merged OpenAPI definitions down to what this repository's tests read.

Usage: python3 cut.py qlik-cloud-rest-openapi-2025-01.json > qlik-cloud-rest-openapi-2025-01.subset.json

Keeps the GET operations of PATHS and every schema, parameter and header reachable from
them or from SCHEMAS (the schemas tests/tests/sim_contract.rs validates against), verbatim.
"""
import json, sys
src = json.load(open(sys.argv[1]))
SCHEMAS = ["Users", "User", "Groups", "ListRolesResult", "Spaces", "Assignments",
           "ItemsListItemsResponseBody", "Tenant", "licenseOverview", "licenseStatus",
           "assignmentsResponse", "consumptionEventsResponse", "api-key-page", "ApiKeysConfig",
           "Errors", "ErrorResponseBody", "settingsBody", "OAuthClientAdminListResponse",
           "GetResult", "GetObjectsResult", "GetSettingsResult", "GetArchiveResult", "GetQuotasResult",
           "oauth-token-response", "ExecutionsByTenantList", "ErrorResponse"]
PATHS = ["/v1/users", "/v1/users/{userId}", "/v1/users/me", "/v1/tenants/{tenantId}", "/v1/tenants/me",
         "/v1/groups", "/v1/roles", "/v1/licenses/overview", "/v1/licenses/status",
         "/v1/licenses/assignments", "/v1/licenses/consumption", "/v1/spaces",
         "/v1/spaces/{spaceId}/assignments", "/v1/items", "/v1/api-keys",
         "/v1/api-keys/configs/{tenantId}", "/v1/licenses/settings", "/v1/oauth-clients",
         "/v1/audits", "/v1/audits/types", "/v1/audits/settings", "/v1/audits/archive", "/v1/quotas",
         "/v1/consumption/executions"]
out = {"swagger": src.get("swagger"), "info": src["info"], "paths": {}, "components": {}}
todo = [f"#/components/schemas/{n}" for n in SCHEMAS]
for p in PATHS:
    out["paths"][p] = {"get": src["paths"][p]["get"]}
    todo.append(None)
def refs(v, acc):
    if isinstance(v, dict):
        if isinstance(v.get("$ref"), str): acc.append(v["$ref"])
        for x in v.values(): refs(x, acc)
    elif isinstance(v, list):
        for x in v: refs(x, acc)
todo = [t for t in todo if t]
refs(out["paths"], todo)
seen = set()
while todo:
    r = todo.pop()
    if r in seen: continue
    seen.add(r)
    _, comp, kind, name = r.split("/", 3)
    target = src[comp][kind][name]
    out["components"].setdefault(kind, {})[name] = target
    refs(target, todo)
out["components"] = {k: dict(sorted(v.items())) for k, v in sorted(out["components"].items())}
json.dump(out, sys.stdout, indent=1, ensure_ascii=False)
print()
