import { expect, test } from "./fixtures";
import { ADMIN, ADMIN_PASSWORD, ready, signInAs } from "./helpers";

// The Compliance page (GDPR part): the administrator sees the privacy settings in force, a
// person's export request and their pending erasure request, and rejects the erasure with a
// reason; the person's account page then shows the reason.
test("the compliance page shows the privacy settings, export and erasure requests, and an erasure is rejected with a reason", async ({ page, request, javaScriptEnabled }) => {
  const name = `cora${javaScriptEnabled ? "js" : "nojs"}${Date.now() % 100000}`;
  const password = "CoraPassword123!";
  const admin = await request.post("/api/v1/auth/login", { data: { username: ADMIN, password: ADMIN_PASSWORD } });
  expect(admin.ok()).toBeTruthy();
  const adminToken = (await admin.json()).access_token;
  const created = await request.post("/api/v1/users", {
    headers: { Authorization: `Bearer ${adminToken}` },
    data: { username: name, email: `${name}@example.com`, password, roles: ["viewer"] },
  });
  expect(created.status()).toBe(201);
  const own = await request.post("/api/v1/auth/login", { data: { username: name, password } });
  const token = (await own.json()).access_token;
  const exported = await request.post("/api/v1/me/export", {
    headers: { Authorization: `Bearer ${token}` },
    data: { format: "json", passphrase: "a long export passphrase" },
  });
  expect(exported.status()).toBe(202);
  const erasure = await request.post("/api/v1/me/erasure", {
    headers: { Authorization: `Bearer ${token}` },
    data: { password },
  });
  expect(erasure.status()).toBe(202);

  await signInAs(page, javaScriptEnabled, "/compliance");
  await ready(page, javaScriptEnabled);
  await expect(page.getByRole("heading", { name: "Compliance", level: 1 })).toBeVisible();
  // soc2.yml's controls, checked live: this run's config requires a second factor of no role
  // (.ci/test), which shows red with its fix; HTTPS is on, which holds.
  const controls = page.getByTestId("controls");
  await expect(controls.getByTestId("control")).toHaveCount(17);
  const mfa = controls.locator('[data-control="multi_factor_auth"]');
  await expect(mfa).toHaveAttribute("data-state", "fails");
  await expect(mfa.locator(".pill-bad")).toHaveText("fails");
  await expect(mfa.getByTestId("control-fix")).toContainText("multi_factor_roles");
  await expect(controls.locator('[data-control="encryption_in_transit"]')).toHaveAttribute("data-state", "holds");
  await expect(controls.locator('[data-control="backup_testing"]')).toContainText("not built yet");
  // Every personal column is classified: the control holds, and the table is on the page.
  await expect(controls.locator('[data-control="data_classification"]')).toHaveAttribute("data-state", "holds");
  await expect(controls.locator('[data-control="purpose_limitation"]')).toHaveAttribute("data-state", "holds");
  const users = page.getByTestId("classification").locator('[data-table="users"]');
  await users.locator("summary").click();
  const email = users.locator('[data-field="users.email"]');
  await expect(email).toBeVisible();
  await expect(email).toContainText("contact");
  await expect(email).toContainText("account.email");
  await expect(users.locator('[data-field="users.password_hash"]')).toContainText("credential");
  const audit = page.getByTestId("classification").locator('[data-table="audit_logs"]');
  await audit.locator("summary").click();
  await expect(audit.locator('[data-field="audit_logs.source_ip"]')).toContainText("ip address → ip_net");
  const settings = page.getByTestId("privacy-settings");
  await expect(settings).toContainText("Keep audit events");
  await expect(settings).toContainText("7 years");
  await expect(settings).toContainText("ip_address, user_agent, email");
  await expect(settings).toContainText("automatic, after a grace period of 7 days");
  // CI serves the browser tests over HTTPS: the page shows what TLS is in force.
  const transit = page.getByTestId("transit");
  await expect(transit).toContainText("TLS 1.2 and 1.3");
  await expect(transit).toContainText("CN=localhost");
  await expect(transit).toContainText("days left");
  await expect(page.getByTestId("compliance-exports").locator("tr", { hasText: name })).toBeVisible();

  const row = page.getByTestId("erasure-row").filter({ hasText: name });
  await expect(row).toHaveAttribute("data-status", "scheduled");
  await expect(row).toContainText("the person");
  await row.getByPlaceholder("Reason (the person sees it)").fill("Legal hold: open invoice dispute");
  await row.getByRole("button", { name: "Reject" }).click();
  await page.waitForURL((url) => url.searchParams.get("erasure") === "rejected");
  await expect(page.getByText("The request was rejected; the person sees your reason.")).toBeVisible();
  await expect(page.getByTestId("erasure-row").filter({ hasText: name })).toHaveAttribute("data-status", "rejected");

  // The person sees the reason over the API, as on their account page.
  const mine = await request.get("/api/v1/me/erasure", { headers: { Authorization: `Bearer ${token}` } });
  const body = await mine.json();
  expect(body.status).toBe("rejected");
  expect(body.note).toBe("Legal hold: open invoice dispute");
});
